"""What every peer and the limit write per event: a prediction shaped and sized as streamlearn's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
import pytest

from app.models.shard import LiveModel, _prediction
from bench.workloads import MODELS, make

COMMON = Path(__file__).resolve().parents[2] / "bench" / "peers" / "common.py"


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("bench_peers_common", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["lr", "tree"])
def test_a_peers_predictions_are_streamlearns_for_the_same_events(common, model: str) -> None:
    workload = make(300)
    learner = common.Learner(model, len(workload.rows))
    live = LiveModel.fresh(MODELS[model])
    assert learner.name == MODELS[model].name

    for raw in workload.rows:
        ours = orjson.loads(learner.process(raw, 1_000.0))
        event = orjson.loads(raw)
        version = live.n_learned
        y_pred = live.predict(event["x"])
        live.score_and_learn(event["x"], event["y"], y_pred)
        theirs = _prediction(event, live.spec.name, version, y_pred, ours["latency_ms"])
        assert ours == theirs
        assert len(orjson.dumps(ours)) == len(orjson.dumps(theirs))

    assert learner.done and learner.count == 300
    assert learner.metric.get() == live.metric_values()["Accuracy"]


def test_latency_is_milliseconds_from_the_kafka_timestamp(common, monkeypatch) -> None:
    learner = common.Learner("lr", 2)
    monkeypatch.setattr(common.time, "time", lambda: 1000.0125)
    rows = make(2).rows

    assert learner.predict(rows[0], 1_000_000.0)["latency_ms"] == 12.5
    assert learner.predict(rows[1], None)["latency_ms"] is None
    assert learner.finished > 0  # the clock stopped at the last event
