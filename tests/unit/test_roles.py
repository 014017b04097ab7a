"""Named models with roles: the config's ``[[model]]`` tables, the champion of a shard through
restarts, and the engine writing the champion's prediction to the predictions topic and the
challengers' to the shadow topic (no broker)."""

from dataclasses import replace

import orjson
import pytest

from app.config import Config
from app.contracts.intake import Intake
from app.models.shard import ShardModels
from app.models.spec import parse_spec, parse_specs
from app.settings import Settings, SettingsError
from app.step import MemoryWindows, Step, Taken
from tests.unit.test_settings import write

MODELS = """
[[model]]
name = "lr"
spec = "StandardScaler | LogisticRegression"
role = "champion"
[[model]]
name = "nb"
spec = "GaussianNB"
role = "challenger"
"""


def test_model_tables_name_the_models_and_their_roles(tmp_path):
    settings = Settings.load({"STREAMLEARN_CONFIG": write(tmp_path, MODELS)})
    assert [(s.name, s.role, s.text) for s in settings.specs] == [
        ("lr", "champion", "StandardScaler | LogisticRegression"),
        ("nb", "challenger", "GaussianNB"),
    ]
    # the environment's STREAMLEARN_MODEL wins over the file's tables
    env = {"STREAMLEARN_CONFIG": write(tmp_path, MODELS), "STREAMLEARN_MODEL": "GaussianNB"}
    assert [(s.name, s.role) for s in Settings.load(env).specs] == [("GaussianNB", "champion")]
    # the string form in the file keeps working: the first spec is the champion
    text = 'model = "GaussianNB; LogisticRegression"\n'
    specs = Settings.load({"STREAMLEARN_CONFIG": write(tmp_path, text)}).specs
    assert [(s.name, s.role) for s in specs] == [
        ("GaussianNB", "champion"),
        ("LogisticRegression", "challenger"),
    ]


def table(name="m", spec="LogisticRegression", role="champion", **more) -> str:
    lines = [f"{k} = {v!r}" for k, v in {"name": name, "spec": spec, "role": role, **more}.items()]
    return "[[model]]\n" + "\n".join(lines).replace("'", '"') + "\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (table(role="challenger"), 'no model has role = "champion"; exactly one must'),
        (table("a") + table("b"), '2 models have role = "champion"'),
        (table("a") + table("a", role="challenger"), "[[model]] #2: name = 'a': another model"),
        (table(spec="Nope"), "[[model]] #1: spec = 'Nope': unknown River estimator 'Nope'"),
        (
            table("a") + table("b", spec="LinearRegression", role="challenger"),
            "[[model]] #2: spec = 'LinearRegression' is a regressor, the champion 'a' is a "
            "classifier",
        ),
        (table(weight="2"), "[[model]] #1: unknown field 'weight'"),
        (table(role="boss"), '[[model]] #1: role = \'boss\': "champion" or "challenger"'),
        (table(name="a/b"), "[[model]] #1: name = 'a/b': letters, digits"),
        ("[[model]]\nname = 'a'\nrole = 'champion'\n", "[[model]] #1: spec must be a non-empty"),
    ],
)
def test_a_bad_model_table_stops_the_start_naming_the_entry_and_the_field(tmp_path, text, says):
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        Settings.load({"STREAMLEARN_CONFIG": path})
    assert str(info.value).startswith(f"config file {path}: ")
    assert says in str(info.value)


def learn(shard: ShardModels, n: int, start: int = 0) -> None:
    step = Step(Intake(None, None, 3600.0, lambda y: None))
    windows = MemoryWindows(type("NoFeatures", (), {"step": lambda self, s, ts, x: ({}, 0)})())
    for i in range(start, start + n):
        event = {"id": f"e{i}", "key": None, "ts": float(i), "x": {"a": i % 7 - 3.0}, "y": i % 2}
        assert type(step.take(orjson.dumps(event), None, 0.0, windows, shard)) is Taken


def test_the_champion_predicts_first_and_a_promotion_stands_through_a_restart():
    specs = parse_specs("LogisticRegression; GaussianNB")
    shard = ShardModels.fresh(0, specs)
    learn(shard, 20)
    predictions, _ = shard.take_event({"id": "x", "key": None, "ts": 1.0, "x": {"a": 1.0}}, 0.0)
    assert [p["model"] for p in predictions] == ["LogisticRegression", "GaussianNB"]
    shard.set_champion("GaussianNB")  # (as a promotion will)
    predictions, _ = shard.take_event({"id": "y", "key": None, "ts": 1.0, "x": {"a": 1.0}}, 0.0)
    assert [p["model"] for p in predictions] == ["GaussianNB", "LogisticRegression"]
    restored = ShardModels.restore(0, specs, shard.snapshot())
    assert restored.champion == "GaussianNB" and list(restored.models)[0] == "GaussianNB"
    assert restored.changes == []
    # the config names another champion than it did: the config wins, and it is said
    swapped = parse_specs("GaussianNB; LogisticRegression")
    again = ShardModels.restore(0, swapped, shard.snapshot())
    assert again.champion == "GaussianNB"  # (the config's champion now)
    lr_first = ShardModels.restore(0, specs, again.snapshot())
    assert lr_first.champion == "LogisticRegression"
    assert lr_first.changes == ["the config names 'LogisticRegression' champion now: it serves"]


def test_a_restart_keeps_unchanged_models_and_starts_new_or_changed_ones_fresh():
    specs = parse_specs("LogisticRegression; GaussianNB; HoeffdingTreeClassifier")
    shard = ShardModels.fresh(0, specs)
    learn(shard, 30)
    saved = shard.snapshot()
    now = [
        parse_specs("LogisticRegression")[0],
        replace(parse_spec("HoeffdingTreeClassifier(grace_period=10)"), role="challenger"),
        replace(parse_spec("Perceptron"), role="challenger"),
    ]  # (the tree: same name, another spec)
    restored = ShardModels.restore(0, now, saved)
    assert restored.models["LogisticRegression"].n_learned == 30
    assert restored.models["HoeffdingTreeClassifier"].n_learned == 0
    assert restored.models["Perceptron"].n_learned == 0
    assert "GaussianNB" not in restored.models
    assert sorted(restored.changes) == [
        "'GaussianNB': no longer configured, dropped",
        "'HoeffdingTreeClassifier': spec changed from 'HoeffdingTreeClassifier', starts fresh",
        "'Perceptron': new, starts fresh",
    ]


def test_one_model_has_no_shadow_topic():
    config = Config.build(Settings(model="LogisticRegression"))
    assert len(config.specs) == 1 and config.shadow_predictions_topic == "predictions-shadow"
