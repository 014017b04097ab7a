"""STREAMLEARN_PROCESSING_GUARANTEE=exactly_once across workers: a worker that joins while the
first one is idle (the first keeps shards whose changelogs end with a transaction's marker), then
that worker killed mid-stream; every event has exactly one committed prediction, and every model
equals River offline."""

import random

import orjson
import pytest

from tests.integration.harness import consume_all, run, wait_for
from tests.integration.test_faults import (
    LR,
    RATE,
    assert_exact,
    hyperplane_events,
    kill_after_a_checkpoint,
    learned,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 3000
PARTITIONS = 4


def committed_predictions(pipeline) -> dict[str, int]:
    """Prediction messages per event id, of committed transactions."""
    counts: dict[str, int] = {}
    for record in run(consume_all(pipeline.bootstrap, pipeline.predictions, "read_committed")):
        event_id = orjson.loads(record.value)["id"]
        counts[event_id] = counts.get(event_id, 0) + 1
    return counts


def test_a_worker_joins_an_idle_one_and_is_killed_each_event_one_prediction(pipeline_factory):
    pipeline = pipeline_factory(
        partitions=PARTITIONS,
        model=LR.text,
        checkpoint_every=300,
        processing_guarantee="exactly_once",
    )
    first = pipeline.start_worker()
    rows = hyperplane_events(N, seed=13)
    values, keys = [orjson.dumps(r) for r in rows], [r["id"].encode() for r in rows]
    half = N // 2
    pipeline.send(pipeline.events, values[:half], keys[:half])
    wait_for(
        lambda: sum(e["n_learned"] for e in learned([first]).values()) == half,
        timeout=120,
        what="the first half learned",
    )
    # idle now: every shard's changelogs end with the marker of its last commit
    wait_for(lambda: len(committed_predictions(pipeline)) == half, what="its output committed")
    second = pipeline.start_worker()
    wait_for(
        lambda: len(second.stats().get("shards_owned", [])) == PARTITIONS // 2
        and len(first.stats().get("shards_owned", [])) == PARTITIONS // 2,
        timeout=120,
        what="two shards each",
    )
    sender = pipeline.send_paced(pipeline.events, values[half:], keys[half:], RATE)
    threshold = half + random.Random(3).randint(200, 900)
    wait_for(
        lambda: sum(e["n_learned"] for e in learned([first, second]).values()) >= threshold,
        timeout=120,
        what=f"{threshold} learned",
    )
    kill_after_a_checkpoint(second)  # (restarted: it takes its shards again)
    sender.join()
    assert_exact(pipeline, [first, second], rows, PARTITIONS)
    counts = wait_for(
        lambda: (c := committed_predictions(pipeline)) and len(c) == N and c,
        what=f"{N} events with a committed prediction",
    )
    assert sorted(set(counts.values())) == [1], "an event with more than one prediction"
    assert sum(counts.values()) == N
