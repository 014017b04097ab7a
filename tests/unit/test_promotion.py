"""The promotion rule on a shard (app/models/promotion.py, app/models/shard.py): a challenger
that beats the champion is promoted at exactly the label where the rule first holds, computed
here again with River alone; the same through a snapshot and restore; the [promotion] table's
mistakes named."""

import random

import pytest
from river import metrics, utils

from app.models.promotion import PromotionRule
from app.models.shard import ShardModels
from app.models.spec import parse_specs
from app.settings import Settings, SettingsError
from tests.unit.test_settings import write

SPECS = "PriorClassifier; StandardScaler | LogisticRegression"
RULE = PromotionRule("Accuracy", window=200, margin=0.02, min_scored=150)


#: the planted drift: before it, every label is true (the prior is as good as any model);
#: after it, the label is the side of a line, which a prior cannot learn and LR can
DRIFT = 1000


def stream(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = {"a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)}
        y = True if i < DRIFT else 2 * x["a"] - x["b"] > 0.3
        out.append({"id": f"e{i}", "key": None, "ts": float(i), "x": x, "y": y})
    return out


def reference(events: list[dict], rule: PromotionRule) -> int | None:
    """The index of the event whose label first satisfies the rule, by River alone."""
    specs = parse_specs(SPECS)
    models = [s.build() for s in specs]
    windows = [utils.Rolling(metrics.Accuracy, window_size=rule.window) for _ in specs]
    scored = [0, 0]
    for i, event in enumerate(events):
        for k, model in enumerate(models):
            # as progressive validation: the default metrics want probabilities, so the
            # models are asked for them, and Accuracy takes the likeliest label
            proba = model.predict_proba_one(event["x"])
            if proba:
                windows[k].update(event["y"], max(proba, key=proba.get))
                scored[k] += 1
            model.learn_one(event["x"], event["y"])
        champion, challenger = windows[0].get(), windows[1].get()
        if min(scored) >= rule.min_scored and challenger - champion > rule.margin:
            return i
    return None


def run(shard: ShardModels, events: list[dict], kind: str | None = None) -> list[dict]:
    """Step ``events`` into ``shard``: the model events it recorded (of type ``kind``)."""
    records = []
    for event in events:
        shard.take_event(dict(event, x=dict(event["x"])), 0.0)
        records += shard.take_model_events()
    return [r for r in records if kind is None or r["type"] == kind]


def test_the_challenger_is_promoted_at_exactly_the_label_where_the_rule_first_holds():
    events = stream(3000)
    expected = reference(events, RULE)
    assert expected is not None and expected > DRIFT  # (before the drift no model leads)
    shard = ShardModels.fresh(0, parse_specs(SPECS), RULE)
    (promotion,) = run(shard, events, "promotion")  # once: the prior never leads again
    assert promotion["event_id"] == f"e{expected}" and promotion["ts"] == float(expected)
    assert promotion["type"] == "promotion" and promotion["shard"] == 0
    assert promotion["n_learned"] == expected + 1  # (the labels it had learned then)
    assert (promotion["before"], promotion["after"]) == (
        "PriorClassifier",
        "StandardScaler-LogisticRegression",
    )
    # a version of each is kept at the promotion (their first: no count-based versions here)
    assert promotion["versions"] == {"PriorClassifier": 1, "StandardScaler-LogisticRegression": 1}
    (version,) = [v for v in shard.take_pending_versions() if v[0]["name"] == "PriorClassifier"]
    assert version[0]["n_learned"] == expected + 1 and version[0]["reason"].startswith("promotion")
    values = promotion["values"]
    assert values["StandardScaler-LogisticRegression"] - values["PriorClassifier"] > 0.02
    assert shard.champion == "StandardScaler-LogisticRegression" and shard.n_promotions == 1
    # from the next event on, the new champion's prediction comes first (the predictions topic's)
    predictions, _ = shard.take_event({"id": "z", "key": None, "ts": 1e9, "x": {"a": 1}}, 0.0)
    assert predictions[0]["model"] == "StandardScaler-LogisticRegression"


def test_a_restart_half_way_gives_the_same_promotion_at_the_same_label():
    events = stream(3000)
    expected = reference(events, RULE)
    specs = parse_specs(SPECS)
    shard = ShardModels.fresh(0, specs, RULE)
    run(shard, events[: expected - 20])  # (inside the window that decides it)
    restored = ShardModels.restore(0, specs, shard.snapshot(), RULE)
    (promotion,) = run(restored, events[expected - 20 :], "promotion")
    assert promotion["event_id"] == f"e{expected}"
    # a promotion stands through a restart too
    again = ShardModels.restore(0, specs, restored.snapshot(), RULE)
    assert again.champion == "StandardScaler-LogisticRegression" and again.n_promotions == 1


def test_no_rule_or_mode_off_promotes_nothing():
    events = stream(1500)
    off = PromotionRule("Accuracy", window=200, margin=0.02, min_scored=150, mode="off")
    for rule in (None, off):
        shard = ShardModels.fresh(0, parse_specs(SPECS), rule)
        assert run(shard, events, "promotion") == [] and shard.champion == "PriorClassifier"


def test_a_lower_is_better_metric_promotes_the_lower():
    rule = PromotionRule("MAE", margin=0.5, min_scored=3)
    assert rule.winner("a", [("a", 3, 2.0), ("b", 3, 1.0), ("c", 3, 1.6)]) == "b"
    assert rule.winner("a", [("a", 3, 2.0), ("b", 3, 1.6)]) is None


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('metric = "MAE"', "metric = 'MAE' is not a metric every model computes"),
        ('metric = "Accuracy"\nwindow = 0', "window = 0: an integer >= 1"),
        ('metric = "Accuracy"\nmargin = -1', "margin = -1: a number >= 0"),
        ('metric = "Accuracy"\nmode = "sometimes"', 'mode = \'sometimes\': "auto" or "off"'),
        ('metric = "Accuracy"\nspeed = 2', "unknown field 'speed'"),
    ],
)
def test_a_bad_promotion_table_stops_the_start_naming_the_field(tmp_path, table, says):
    path = write(tmp_path, f'model = "LogisticRegression; GaussianNB"\n[promotion]\n{table}\n')
    with pytest.raises(SettingsError) as info:
        Settings.load({"STREAMLEARN_CONFIG": path}).promotion  # noqa: B018
    assert str(info.value).startswith(f"config file {path}: [promotion]: ")
    assert says in str(info.value)
