"""Keys idle for twice ``STREAMLEARN_WINDOW_EXPIRES`` leave the worker's store and the
key-windows changelog, also those that left its key cache while they were still recent (found
by the sweep of tables/windows.py): keys that come and go do not fill the disk."""

import time

import orjson
import pytest

from app.models.spec import parse_spec
from tests.integration.harness import consume_all, run, wait_for

pytestmark = pytest.mark.integration

LR = parse_spec("StandardScaler | LogisticRegression")


def event(i: int, key: str, ts: float) -> bytes:
    return orjson.dumps(
        {"id": f"e{i}", "key": key, "ts": ts, "x": {"a": float(i % 7)}, "y": i % 2 == 0}
    )


def test_idle_keys_leave_the_store_and_the_changelog(pipeline_factory):
    pipeline = pipeline_factory(
        partitions=1,
        model=LR.text,
        window=30,
        hop_window=30,
        hop_step=10,
        window_expires=60,
        key_cache=5,
    )
    worker = pipeline.start_worker()
    t0 = time.time() - 3600.0

    def send_and_checkpoint(i: int, key: str, ts: float) -> None:
        pipeline.send(pipeline.events, [event(i, key, ts)], [key.encode()])
        wait_for(
            lambda: (c := pipeline.last_checkpoint(0))
            and c["models"][LR.name]["n_learned"] == i + 1,
            what=f"the checkpoint of {i + 1} events",
        )

    keys = [f"k{i:03d}" for i in range(100)]
    pipeline.send(
        pipeline.events,
        [event(i, k, t0 + i * 0.1) for i, k in enumerate(keys)],
        [k.encode() for k in keys],
    )
    wait_for(
        lambda: (c := pipeline.last_checkpoint(0)) and c["models"][LR.name]["n_learned"] == 100,
        what="the checkpoint of 100 events",
    )
    # all 100 keys are stored: 95 of them left the cache (5 keys) while recent, so were kept
    assert live_keys(pipeline) == set(keys)
    # event time moves on by more than twice expires: its checkpoint finds the 100 keys idle
    # (one as it leaves the cache, 95 by the sweep), and the next one deletes them
    send_and_checkpoint(100, "z", t0 + 1000.0)
    send_and_checkpoint(101, "z", t0 + 1001.0)
    assert live_keys(pipeline) == {*keys[96:], "z"}  # the cache's 5: still in memory, kept
    wait_for(lambda: worker.stats()["counters"].get("keys_forgotten") == 96, what="96 counted")


def live_keys(pipeline) -> set[str]:
    """The keys whose newest value in the key-windows changelog is not a tombstone."""
    newest: dict[str, bytes | None] = {}
    for record in run(consume_all(pipeline.bootstrap, f"{pipeline.id}-key-windows-changelog")):
        newest[orjson.loads(record.key)] = record.value
    return {key for key, value in newest.items() if value is not None}
