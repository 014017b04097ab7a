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


def run_wait(counts: list, exits_after: int, stall: float = 10.0) -> list[float]:
    """bench.peer_runs.wait_progress on a fake process, clock and sleep: the process exits after
    ``exits_after`` polls, ``counts`` are the predictions counted at each (an exception: the
    count failed), each poll one second later; the times it counted at."""
    import asyncio

    from bench.peer_runs import wait_progress

    now = [0.0]
    polls = iter(range(10_000))
    counted: list[float] = []

    def exited() -> int | None:
        return 0 if next(polls) >= exits_after else None

    async def count() -> int:
        counted.append(now[0])
        value = counts[min(len(counted), len(counts)) - 1]
        if isinstance(value, Exception):
            raise value
        return value

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    asyncio.run(
        wait_progress(
            exited, count, 100, "predictions", stall, 1.0, clock=lambda: now[0], sleep=sleep
        )
    )
    return counted


def test_a_peer_run_lasts_as_long_as_it_makes_progress() -> None:
    # 1,000 polls with a prediction more at each: far past any stall, and no limit of its own
    counted = run_wait(list(range(1, 1001)), exits_after=1000)
    assert len(counted) == 1000


def test_a_peer_run_that_stops_writing_fails_after_the_stall_saying_how_far_it_got() -> None:
    with pytest.raises(TimeoutError, match="got 5 of 100 predictions, none more for 10 s"):
        run_wait([1, 2, 3, 4, 5], exits_after=10_000)


def test_a_slow_start_and_failed_counts_are_no_progress_but_not_an_error() -> None:
    # nothing for 8 s (start-up), a failed count, then progress: the stall counts from the last
    counts = [0] * 8 + [RuntimeError("no leader")] + list(range(1, 20))
    counted = run_wait(counts, exits_after=25)
    assert len(counted) == 25
    with pytest.raises(TimeoutError, match="got 0 of 100"):
        run_wait([0] * 30, exits_after=10_000)
