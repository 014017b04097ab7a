"""The per-message learning step equals River's own progressive validation, exactly.

Events go through the engine's own per-event step (``app/step.py``: raw bytes in); joined labels
through ``ShardModels.step``, as the learner sends them.
"""

import pickle

import orjson
import pytest
from river import datasets, evaluate

from app.commands.datasets import encode_x
from app.contracts.intake import Intake
from app.models.label_rules import label_check
from app.models.shard import ShardModels
from app.models.spec import parse_spec, parse_specs
from app.step import MemoryWindows, Step, Taken
from tests.model_state import canonical


class NoFeatures:
    """A recipe that adds nothing (these tests are about the models)."""

    def step(self, state, ts, x):
        return {"t": ts}, 0


NO_WINDOWS = MemoryWindows(NoFeatures())


def take(shard: ShardModels, event: dict, now: float = 1000.0, t_in: float | None = None) -> Taken:
    """Step one event, as the engine does: its JSON bytes through ``Step.take``."""
    specs = [live.spec for live in shard.models.values()]
    step = Step(Intake(None, None, 3600.0, label_check(specs)))
    taken = step.take(orjson.dumps(event), None, now, NO_WINDOWS, shard, t_in)
    assert type(taken) is Taken, taken
    return taken


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
        take(shard, {"id": str(offset), "key": None, "ts": 0.0, **row})

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
        out = take(shard, {"id": str(i), "key": None, "ts": 1.0, "x": row["x"]})
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
        shard.step(label, i)

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
        take(straight, {"id": str(i), "key": None, "ts": 0.0, **row})

    first = ShardModels.fresh(0, specs)
    for i, row in enumerate(rows[:120]):
        take(first, {"id": str(i), "key": None, "ts": 0.0, **row})
        first.origins["e0"] = i  # as the engine keeps the events offset taken
    resumed = ShardModels.restore(0, specs, pickle.loads(pickle.dumps(first.snapshot())))
    assert resumed.origins == {"e0": 119}
    for i, row in enumerate(rows[120:], start=120):
        take(resumed, {"id": str(i), "key": None, "ts": 0.0, **row})
    for name in straight.models:
        assert canonical(resumed.models[name].model) == canonical(straight.models[name].model)
        assert resumed.models[name].metric_values() == straight.models[name].metric_values()


def test_prediction_contract():
    spec = parse_spec("LogisticRegression")
    shard = ShardModels.fresh(0, [spec])
    event = {"id": "e1", "key": "k", "ts": 5.0, "x": {"a": 1.0}, "y": True}
    out = take(shard, event, now=1000.25, t_in=1000.0)
    (pred,) = out.predictions
    assert set(pred) == {"id", "key", "model", "version", "y_pred", "proba", "ts", "latency_ms"}
    assert (pred["id"], pred["key"], pred["model"], pred["version"]) == ("e1", "k", spec.name, 0)
    assert pred["latency_ms"] == 250.0
    assert pred["proba"] == [[False, 0.5], [True, 0.5]]
    assert out.park is None


def test_copies_of_joined_labels_resent_upstream_are_taken_once():
    spec = parse_spec("StandardScaler | LogisticRegression")
    rows = json_rows(datasets.Phishing(), 30)
    once, twice = ShardModels.fresh(0, [spec]), ShardModels.fresh(0, [spec])
    labels = []
    for i, row in enumerate(rows):
        park = take(once, {"id": str(i), "key": None, "ts": 0, "x": row["x"]}).park
        take(twice, {"id": str(i), "key": None, "ts": 0, "x": row["x"]})
        labels.append({**park, "kind": "label", "y": row["y"], "src": ["j", 0, i]})
    for i, label in enumerate(labels):
        once.step(label, i)
    offset = 0
    # the join crashed twice and sent labels 10..19, then 5..29, again
    for i in [*range(20), *range(10, 20), *range(5, 30)]:
        twice.step(labels[i], offset)
        offset += 1
    assert twice.n_duplicates == 10 + 15
    live_once, live_twice = once.models[spec.name], twice.models[spec.name]
    assert live_twice.n_learned == live_twice.n_predicted == live_twice.n_scored == 30
    assert canonical(live_twice.model) == canonical(live_once.model)
    assert live_twice.metric_values() == live_once.metric_values()
    restored = ShardModels.restore(0, [spec], twice.snapshot())
    assert restored.origins == {"j0": 29} and restored.n_duplicates == 25


@pytest.mark.parametrize("spec", ["StandardScaler | LogisticRegression", "GaussianNB"])
def test_a_peek_answers_as_a_prediction_and_leaves_the_model_as_it_was(spec):
    # River adds a feature it has not seen to a model's statistics when it predicts (the
    # scaler's and GaussianNB's defaultdicts): a score on request changed the live model
    shard = ShardModels.fresh(0, parse_specs(spec))
    (live,) = shard.models.values()
    for i in range(50):
        x = {"a": float(i % 7), "b": float(i % 3)}
        live.score_and_learn(x, i % 2 == 0, live.predict(x))
    before, counts = pickle.dumps(live.model), (live.n_learned, live.n_predicted)
    for x in [{"a": 2.0, "new": 5.0}, {"a": 2.0, "b": 1.0, "other": 1.0}, {"a": 1.0}]:
        expected = pickle.loads(before).predict_proba_one(x)  # (a copy predicts: it may change)
        assert live.peek(x) == expected
        assert live.peek(x) == expected  # (again: what the copy took in does not matter)
    assert pickle.dumps(live.model) == before and (live.n_learned, live.n_predicted) == counts
    live.score_and_learn({"a": 1.0, "new": 2.0}, True, None)  # learned since: a fresh copy
    assert live.peek({"a": 1.0, "new": 2.0}) == pickle.loads(
        pickle.dumps(live.model)
    ).predict_proba_one({"a": 1.0, "new": 2.0})
