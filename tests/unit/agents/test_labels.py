"""The label join agent without a broker (faust's test_context): what it sends and counts."""

import time

import pytest

from app import parts
from tests.unit.test_join import label, park

join_labels, expiry = parts.join_labels, parts.expiry
pipeline_counts, pending_by_id = parts.counters.counts, parts.pending


@pytest.fixture(autouse=True)
def empty_join(app):
    """Nothing waits in the join (the memory store lives as long as the test process)."""
    pending_by_id.data.clear()
    expiry.heaps.clear()


async def test_a_joined_label_goes_to_the_events_shard_once(app, sent):
    before = pipeline_counts["duplicate_labels:0"], pipeline_counts["parks_dropped:0"]
    async with join_labels.test_context() as agent:
        await agent.put(park("j1", shard=2), key=b"j1")
        sent["scoring"].assert_not_awaited()
        await agent.put(label("j1"), key=b"j1")
        await agent.put(label("j1", y=False), key=b"j1")  # a second label
        await agent.put(park("j1", shard=2), key=b"j1")  # parked again after a crash
    kwargs = sent["scoring"].await_args.kwargs
    assert sent["scoring"].await_count == 1
    assert kwargs["partition"] == 2 and kwargs["key"] == "card-1"
    assert kwargs["value"]["y"] is True and kwargs["value"]["id"] == "j1"
    assert pending_by_id["j1"]["joined"] is True
    assert (pipeline_counts["duplicate_labels:0"], pipeline_counts["parks_dropped:0"]) == (
        before[0] + 1,
        before[1] + 1,
    )


async def test_waiting_halves_expire_after_the_ttl_of_event_time_and_are_counted(app, sent):
    before = pipeline_counts["expired_events:0"], pipeline_counts["orphan_labels:0"]
    async with join_labels.test_context() as agent:
        await agent.put(park("x1", ts=0.0), key=b"x1")
        await agent.put(label("x2", ts=1.0), key=b"x2")
        # a day and more of event time later (STREAMLEARN_LABEL_TTL: 86,400 s)
        await agent.put(park("x3", ts=86_402.0), key=b"x3")
    assert "x1" not in pending_by_id and "x2" not in pending_by_id and "x3" in pending_by_id
    assert (pipeline_counts["expired_events:0"], pipeline_counts["orphan_labels:0"]) == (
        before[0] + 1,
        before[1] + 1,
    )
    sent["scoring"].assert_not_awaited()


async def test_a_label_from_the_future_within_the_tolerance_expires_only_what_the_docs_say(
    app, sent
):
    # a label stamped MAX_FUTURE (3,600 s) ahead of the clock, among events parked at times
    # from a day ago to now: only those older than LABEL_TTL before its time expire
    now = time.time()
    ttl, max_future = 86_400.0, 3_600.0
    before = pipeline_counts["expired_events:0"]
    async with join_labels.test_context() as agent:
        await agent.put(park("old", ts=now - ttl - 10), key=b"old", partition=0)  # expires
        await agent.put(park("kept", ts=now - (ttl - max_future) + 5), key=b"kept", partition=0)
        await agent.put(park("recent", ts=now - 1000), key=b"recent", partition=0)
        await agent.put(label("future", ts=now + max_future - 1), key=b"future", partition=0)
    assert "old" not in pending_by_id
    assert "kept" in pending_by_id and "recent" in pending_by_id
    assert pipeline_counts["expired_events:0"] == before + 1
