"""Drift that acts (app/models/drift.py, app/models/shard.py): the detector reads each model's
errors and detects at exactly the label River's detector does on the same errors; a drift of
the champion takes the configured action; through a restore the same; mistakes named."""

import pytest
from river import drift

from app.models.drift import DriftRule
from app.models.promotion import PromotionRule
from app.models.shard import ShardModels
from app.models.spec import parse_specs
from app.settings import Settings, SettingsError
from tests.unit.test_promotion import run, stream
from tests.unit.test_settings import write

SPECS = "StandardScaler | LogisticRegression; GaussianNB"


def champion_drifts(events: list[dict], detector: str) -> list[int]:
    """The labels at which ``detector`` finds a change in [lr]'s 0/1 errors, by River alone."""
    spec = parse_specs(SPECS)[0]
    model, found = spec.build(), []
    watch = DriftRule(detector).new_detector()
    for i, event in enumerate(events):
        proba = model.predict_proba_one(event["x"])
        if proba:
            watch.update(int(max(proba, key=proba.get) != event["y"]))
            if watch.drift_detected:
                found.append(i)
        model.learn_one(event["x"], event["y"])
    return found


def test_the_champion_s_drift_is_recorded_at_the_label_river_s_detector_finds_it():
    events = stream(4000)
    expected = champion_drifts(events, "ADWIN")
    assert expected and expected[0] > 1000  # (the planted drift at 1000)
    shard = ShardModels.fresh(0, parse_specs(SPECS), drift=DriftRule("ADWIN", "alert"))
    records = [
        r for r in run(shard, events, "drift") if r["model"] == "StandardScaler-LogisticRegression"
    ]
    assert [r["event_id"] for r in records] == [f"e{i}" for i in expected]
    assert all(r["type"] == "drift" and r["action"] == "alert" for r in records)
    assert shard.models["StandardScaler-LogisticRegression"].n_drifts == len(expected)
    assert shard.champion == "StandardScaler-LogisticRegression"  # alert: nothing else


def test_a_restore_half_way_detects_at_the_same_labels():
    events = stream(4000)
    specs, rule = parse_specs(SPECS), DriftRule("ADWIN")
    whole = run(ShardModels.fresh(0, specs, drift=rule), events)
    shard = ShardModels.fresh(0, specs, drift=rule)
    first = run(shard, events[:1100])
    restored = ShardModels.restore(0, specs, shard.snapshot(), drift=rule)
    assert first + run(restored, events[1100:]) == whole


def test_reset_challengers_restarts_them_when_the_champion_drifts():
    events = stream(4000)
    expected = champion_drifts(events, "ADWIN")
    rule = DriftRule("ADWIN", "reset_challengers")
    shard = ShardModels.fresh(0, parse_specs(SPECS), drift=rule)
    run(shard, events[: expected[0] + 1])
    # reset at the drift's label: the challenger has learned nothing since
    assert shard.models["GaussianNB"].n_learned == 0
    assert shard.models["StandardScaler-LogisticRegression"].n_learned == expected[0] + 1


def test_promote_best_promotes_the_leading_challenger_when_the_champion_drifts():
    events = stream(4000)
    specs = parse_specs("PriorClassifier; StandardScaler | LogisticRegression")
    promotion = PromotionRule("Accuracy", window=200, margin=0.5, min_scored=10_000)  # never
    shard = ShardModels.fresh(0, specs, promotion, DriftRule("ADWIN", "promote_best"))
    records = run(shard, events)
    drifts = [r for r in records if r["type"] == "drift" and r["role"] == "champion"]
    promotions = [r for r in records if r["type"] == "promotion"]
    assert drifts and promotions[0]["event_id"] == drifts[0]["event_id"]
    assert promotions[0]["after"] == "StandardScaler-LogisticRegression"


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('detector = "ADWON"', "detector = 'ADWON': unknown river.drift detector 'ADWON'"),
        ('detector = "ADWIN(nope=1)"', "detector = 'ADWIN(nope=1)': ADWIN"),
        ('action = "panic"', "action = 'panic': one of alert, reset_challengers, promote_best"),
        ('when = "now"', "unknown field 'when'"),
    ],
)
def test_a_bad_drift_table_stops_the_start_naming_the_field(tmp_path, table, says):
    path = write(tmp_path, f"[drift]\n{table}\n")
    with pytest.raises(SettingsError) as info:
        Settings.load({"STREAMLEARN_CONFIG": path}).drift  # noqa: B018
    assert str(info.value).startswith(f"config file {path}: [drift]: ")
    assert says in str(info.value)


def test_every_river_detector_but_the_wrappers_can_be_named():
    for name in ("ADWIN", "KSWIN(seed=1)", "PageHinkley", "DummyDriftDetector"):
        assert hasattr(DriftRule(name).new_detector(), "drift_detected")
    assert drift.ADWIN  # (river.drift is what the names resolve against)
