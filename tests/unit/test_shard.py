"""The per-message learning step equals River's own progressive validation, exactly."""

import pickle

import orjson
import pytest
from river import datasets, evaluate

from app.datasets import encode_x
from app.model_spec import parse_spec, parse_specs
from app.shard import ShardModels
from tests.model_state import canonical


def json_rows(dataset, limit):
    rows = []
    for i, (x, y) in enumerate(dataset):
        if i == limit:
            break
        rows.append(orjson.loads(orjson.dumps({"x": encode_x(x), "y": y})))
    return rows


@pytest.mark.parametrize(
    ("spec", "dataset"),
    [
        ("StandardScaler | LogisticRegression", datasets.Phishing()),
        ("HoeffdingTreeClassifier(grace_period=50)", datasets.Phishing()),
        ("StandardScaler | LinearRegression", datasets.TrumpApproval()),
    ],
)
def test_step_equals_progressive_val_score(spec, dataset):
    rows = json_rows(dataset, 600)
    parsed = parse_spec(spec)
    shard = ShardModels.fresh(0, [parsed])
    for offset, row in enumerate(rows):
        shard.step({"kind": "event", "id": str(offset), "key": None, "ts": 0.0, **row}, offset)

    model, metric = parsed.build(), parsed.new_metrics()
    evaluate.progressive_val_score([(r["x"], r["y"]) for r in rows], model, metric)

    live = shard.models[parsed.name]
    assert live.n_learned == live.n_predicted == 600
    assert [m.get() for m in live.metric] == [m.get() for m in metric]
    assert canonical(live.model) == canonical(model)


def test_delayed_label_scores_the_prediction_made_at_event_time():
    spec = parse_spec("StandardScaler | LogisticRegression")
    rows = json_rows(datasets.Phishing(), 40)
    shard = ShardModels.fresh(3, [spec])
    parks = []
    for i, row in enumerate(rows):
        out = shard.step({"kind": "event", "id": str(i), "key": None, "ts": 1.0, "x": row["x"]}, i)
        assert out.park["shard"] == 3
        parks.append(orjson.loads(orjson.dumps(out.park)))  # as it travels through Kafka
    for i, (park, row) in enumerate(zip(parks, rows, strict=True)):
        label = {
            "kind": "label",
            "id": park["id"],
            "key": None,
            "ts": 2.0,
            "x": park["x"],
            "y": row["y"],
            "y_pred": park["y_pred"],
        }
        shard.step(label, 40 + i)

    model, metric = spec.build(), spec.new_metrics()
    preds = [model.predict_proba_one(r["x"]) for r in rows]
    for pred, row in zip(preds, rows, strict=True):
        metric.update(row["y"], pred)
        model.learn_one(row["x"], row["y"])
    live = shard.models[spec.name]
    assert (live.n_predicted, live.n_learned, live.n_scored) == (40, 40, 40)
    assert [m.get() for m in live.metric] == [m.get() for m in metric]
    assert canonical(live.model) == canonical(model)


def test_snapshot_restore_round_trip_continues_identically():
    specs = parse_specs("StandardScaler | LogisticRegression; GaussianNB")
    rows = json_rows(datasets.Phishing(), 200)
    straight = ShardModels.fresh(0, specs)
    for i, row in enumerate(rows):
        straight.step({"kind": "event", "id": str(i), "key": None, "ts": 0.0, **row}, i)

    first = ShardModels.fresh(0, specs)
    for i, row in enumerate(rows[:120]):
        first.step({"kind": "event", "id": str(i), "key": None, "ts": 0.0, **row}, i)
    resumed = ShardModels.restore(0, specs, pickle.loads(pickle.dumps(first.snapshot())))
    assert resumed.offset == 119 and resumed.covers(119) and not resumed.covers(120)
    for i, row in enumerate(rows[120:], start=120):
        resumed.step({"kind": "event", "id": str(i), "key": None, "ts": 0.0, **row}, i)
    for name in straight.models:
        assert canonical(resumed.models[name].model) == canonical(straight.models[name].model)
        assert resumed.models[name].metric_values() == straight.models[name].metric_values()


def test_prediction_contract():
    spec = parse_spec("LogisticRegression")
    shard = ShardModels.fresh(0, [spec])
    out = shard.step(
        {
            "kind": "event",
            "id": "e1",
            "key": "k",
            "ts": 5.0,
            "x": {"a": 1.0},
            "y": True,
            "t_in": 1000.0,
        },
        0,
        now=1000.25,
    )
    (pred,) = out.predictions
    assert set(pred) == {"id", "key", "model", "version", "y_pred", "proba", "ts", "latency_ms"}
    assert (pred["id"], pred["key"], pred["model"], pred["version"]) == ("e1", "k", spec.name, 0)
    assert pred["latency_ms"] == 250.0
    assert pred["proba"] == [[False, 0.5], [True, 0.5]]
    assert out.park is None


def test_copies_resent_upstream_are_taken_once():
    spec = parse_spec("StandardScaler | LogisticRegression")
    rows = json_rows(datasets.Phishing(), 30)
    once, twice = ShardModels.fresh(0, [spec]), ShardModels.fresh(0, [spec])
    for i, row in enumerate(rows):
        once.step(
            {"kind": "event", "id": str(i), "key": None, "ts": 0, "src": ["e", 0, i], **row}, i
        )
    offset = 0
    # upstream crashed twice and sent rows 10..19, then 5..29, again
    for i in [*range(20), *range(10, 20), *range(5, 30)]:
        value = {"kind": "event", "id": str(i), "key": None, "ts": 0, "src": ["e", 0, i], **rows[i]}
        twice.step(value, offset)
        offset += 1
    assert twice.n_duplicates == 10 + 15
    live_once, live_twice = once.models[spec.name], twice.models[spec.name]
    assert live_twice.n_learned == live_twice.n_predicted == 30
    assert canonical(live_twice.model) == canonical(live_once.model)
    restored = ShardModels.restore(0, [spec], twice.snapshot())
    assert restored.origins == {"e0": 29} and restored.n_duplicates == 25
