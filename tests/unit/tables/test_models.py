"""LiveShards' bookkeeping of what may be acknowledged, and of holes in delivered offsets."""

import asyncio
import time
from types import SimpleNamespace

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import TP

import tables.models as models_module
import tables.windows as windows_module
from app.model_spec import parse_specs
from app.outbox import FlushTimeout, Outbox
from app.shard import ShardModels
from tables.anchor import writing_to
from tables.models import LiveShards, OutputLost
from tables.windows import ShardWindows
from tests.unit.fakes import HeldProducer, acknowledge, fake_table, settle, until

TOPIC_PARTITION = TP("scoring", 0)


class FakeEvent:
    def __init__(self, offset: int) -> None:
        self.message = SimpleNamespace(offset=offset, tp=TOPIC_PARTITION)
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def shards_learned_up_to(offset: int) -> LiveShards:
    live = LiveShards("LogisticRegression", every=1000, seconds=2.0, secret="s")
    models = ShardModels.fresh(0, parse_specs("LogisticRegression"))
    models.offset = offset
    models.models["LogisticRegression"].n_learned = offset + 1
    live.shards[0], live.held[0] = models, []
    live.checkpointed[0] = offset
    return live


def test_an_offset_past_the_next_needed_one_is_a_hole():
    live = shards_learned_up_to(329)
    assert not live.ahead_of(0, 330)
    assert not live.ahead_of(0, 300)
    assert live.ahead_of(0, 332)


def test_only_covered_messages_are_acknowledged_the_early_ones_wait():
    live = shards_learned_up_to(329)
    early, duplicate = [FakeEvent(332), FakeEvent(333)], FakeEvent(325)
    for event in [*early, duplicate]:
        live.hold(0, event)
    assert live.waiting_for_holes() == [(0, TOPIC_PARTITION)]
    live._ack_covered(0, covered=329)
    assert duplicate.acked and not any(e.acked for e in early)
    assert live.held[0] == early


def test_seeks_back_at_most_once_a_second():
    live = shards_learned_up_to(329)
    assert live.should_seek(0)
    assert not live.should_seek(0)
    assert live.sought[0][:2] == (330, 1)


def test_a_fresh_shard_takes_its_first_offset_whatever_it_is():
    live = LiveShards("LogisticRegression", every=1000, seconds=2.0, secret="s")
    live.shards[0] = ShardModels.fresh(0, parse_specs("LogisticRegression"))
    assert not live.ahead_of(0, 57)


def test_checkpoint_coverage_is_the_stored_one_not_the_learned_one():
    live = shards_learned_up_to(329)
    live.shards[0].offset = 400  # learned further, not checkpointed yet
    assert live.covered_by_checkpoint(0, 329)
    assert not live.covered_by_checkpoint(0, 350)


def test_a_shard_idle_below_the_end_of_its_partition_is_stalled():
    live = shards_learned_up_to(329)
    live.last_taken[0] = 100.0
    assert live.stalled(0, highwater=400, now=103.0)
    assert not live.stalled(0, highwater=400, now=101.0)  # took something a moment ago
    assert not live.stalled(0, highwater=330, now=103.0)  # at the end
    assert not live.stalled(0, highwater=None, now=103.0)  # nothing fetched yet


def test_checkpoints_are_spaced_by_what_the_last_snapshot_cost():
    live = shards_learned_up_to(329)
    live.taken[0], live.last_checkpoint[0] = 5000, 100.0
    assert live.due(0, now=100.1)  # `every` (1000) events waiting
    live.taken[0] = 10
    assert not live.due(0, now=101.0)
    assert live.due(0, now=102.0)  # `seconds` passed
    live.snapshot_seconds[0] = 0.1  # a big model: pickling it took 100 ms
    assert not live.due(0, now=105.0)
    live.taken[0] = 5000
    assert not live.due(0, now=105.0)  # even with `every` events waiting
    assert live.due(0, now=110.0)  # SNAPSHOT_SHARE_INVERSE (100) x 0.1 s later
    live.snapshot_seconds[0] = 5.0  # a huge model: 500 s by the rule above
    assert not live.due(0, now=129.0)
    assert live.due(0, now=130.0)  # but never more than MAX_CHECKPOINT_SPACING (30 s)


@pytest.fixture
def tables(monkeypatch):
    """The checkpoint and window tables as dicts, and Faust's producer as one with no output."""
    fakes = {"checkpoints": fake_table("shard-checkpoints"), "windows": fake_table("key-windows")}
    monkeypatch.setattr(models_module, "shard_checkpoints", fakes["checkpoints"])
    monkeypatch.setattr(models_module, "key_windows", fakes["windows"])
    monkeypatch.setattr(windows_module, "key_windows", fakes["windows"])

    async def flush():
        pass

    monkeypatch.setattr(
        models_module, "app", SimpleNamespace(producer=SimpleNamespace(flush=flush))
    )
    return fakes


def shard_with_output(producer: HeldProducer) -> LiveShards:
    """Shard 0 learned up to offset 329 from the engine, with one key's windows changed and
    the prediction of its last event waiting in the outbox."""
    live = shards_learned_up_to(329)
    live.checkpointed[0], live.taken[0] = -1, 330
    live.windows[0] = ShardWindows(0, base=-1, cache_size=100)
    with writing_to(0):
        live.windows[0].update("k", 10.0, {"a": 1.0})
    live.outbox = Outbox(producer)
    live.outbox.add("predictions", 0, b"e329", b"p")
    return live


async def test_a_checkpoint_is_stored_once_kafka_has_it_and_after_the_output_it_covers(tables):
    producer = HeldProducer()
    live = shard_with_output(producer)
    task = asyncio.ensure_future(live.checkpoint(0))
    await until(lambda: len(producer.deliveries) == 2)  # the prediction and the window values
    assert [stage for _, stage, _ in live.slow_checkpoints(time.monotonic(), 0.0)] == [
        "flushing output"
    ]
    acknowledge(producer.deliveries[0], 10)
    await settle()
    assert len(producer.deliveries) == 2  # no checkpoint sent before all its output is in Kafka
    acknowledge(producer.deliveries[1], 20)
    await until(lambda: len(producer.deliveries) == 3)
    assert 0 not in tables["checkpoints"].data  # sent, not acknowledged: not stored yet
    acknowledge(producer.deliveries[2], 30)
    await task
    stored = live.codec.loads(tables["checkpoints"].data[0])
    assert stored["offset"] == 329
    assert tables["checkpoints"].data.persisted[1] == 30
    assert live.checkpointed[0] == 329 and live.taken[0] == 0 and live.writing == {}


async def test_output_kafka_does_not_acknowledge_fails_the_checkpoint_which_is_tried_again(
    tables, monkeypatch
):
    monkeypatch.setattr(models_module, "FLUSH_TIMEOUT", 0.05)
    producer = HeldProducer()
    live = shard_with_output(producer)
    with pytest.raises(FlushTimeout):
        await live.checkpoint(0)
    assert len(producer.deliveries) == 2 and 0 not in tables["checkpoints"].data
    assert live.checkpointed[0] == -1 and live.taken[0] == 330 and live.writing == {}
    assert "k" in live.windows[0].clean  # its window values are written again next time
    for offset, delivery in enumerate(producer.deliveries):
        acknowledge(delivery, offset)
    task = asyncio.ensure_future(live.checkpoint(0))
    for sent in (3, 4):  # the window values again, then the checkpoint
        await until(lambda n=sent: len(producer.deliveries) == n)
        acknowledge(producer.deliveries[-1], sent)
    await task
    assert live.codec.loads(tables["checkpoints"].data[0])["offset"] == 329


async def test_output_kafka_refuses_stops_the_checkpoint_that_would_cover_it(tables):
    producer = HeldProducer()
    live = shard_with_output(producer)
    task = asyncio.ensure_future(live.checkpoint(0))
    await until(lambda: len(producer.deliveries) == 2)
    producer.deliveries[0].set_exception(MessageSizeTooLargeError())  # after aiokafka's retries
    acknowledge(producer.deliveries[1], 0)
    with pytest.raises(OutputLost, match="shard 0 learned since its last checkpoint"):
        await task
    assert len(producer.deliveries) == 2 and 0 not in tables["checkpoints"].data
    assert live.checkpointed[0] == -1 and "k" in live.windows[0].clean
    with pytest.raises(OutputLost):  # nor later, e.g. while the worker stops: it is gone
        await live.checkpoint(0)
    assert len(producer.deliveries) == 2 and 0 not in tables["checkpoints"].data


async def test_a_revocation_waits_for_the_checkpoint_in_progress_then_writes_its_own(tables):
    producer = HeldProducer()
    live = shard_with_output(producer)
    running = asyncio.ensure_future(live.checkpoint(0))  # the checkpoint loop's
    await until(lambda: len(producer.deliveries) == 2)
    await live.checkpoint(0)  # another caller that need not wait: skipped
    revoking = asyncio.ensure_future(live.checkpoint(0, wait=True))
    with writing_to(0):  # the engine takes one more event meanwhile
        live.windows[0].update("k", 11.0, {"a": 1.0})
    live.shards[0].offset, live.taken[0] = 330, live.taken[0] + 1
    for sent in (1, 2, 3):  # the prediction, the window values, the checkpoint at 329
        await until(lambda n=sent: len(producer.deliveries) >= n)
        acknowledge(producer.deliveries[sent - 1], sent)
    await running
    assert not revoking.done()
    for sent in (4, 5):  # then the revocation's own: window values, the checkpoint at 330
        await until(lambda n=sent: len(producer.deliveries) == n)
        acknowledge(producer.deliveries[-1], sent)
    await revoking
    assert live.codec.loads(tables["checkpoints"].data[0])["offset"] == 330
    assert live.taken[0] == 0 and live.checkpointed[0] == 330


def shard_with_agent_output(producer: HeldProducer) -> tuple[LiveShards, asyncio.Future]:
    """Shard 0 took offsets 0..9 through the learner agent, whose last prediction is sent to
    Faust's producer and not acknowledged yet."""
    live = shards_learned_up_to(9)
    live.checkpointed[0], live.taken[0] = -1, 0
    live.held[0] = [FakeEvent(offset) for offset in range(10)]
    live.windows[0] = ShardWindows(0, base=-1, cache_size=100)
    live.outbox = Outbox(producer)
    prediction = asyncio.get_running_loop().create_future()  # Faust's FutureMessage
    live.sent(0, prediction)
    return live, prediction


async def test_a_checkpoint_waits_until_kafka_has_the_agents_output_it_covers(tables):
    producer = HeldProducer()
    live, prediction = shard_with_agent_output(producer)
    events = list(live.held[0])
    task = asyncio.ensure_future(live.checkpoint(0))
    await settle()
    assert producer.deliveries == []  # the checkpoint is not sent before the prediction is in
    acknowledge(prediction, 7)
    await until(lambda: len(producer.deliveries) == 1)
    acknowledge(producer.deliveries[0], 1)
    await task
    assert live.codec.loads(tables["checkpoints"].data[0])["offset"] == 9
    assert live.held[0] == [] and all(event.acked for event in events)
    assert live.agent_output.get(0, []) == []


async def test_an_agent_send_kafka_refuses_stops_the_checkpoint_that_would_cover_it(tables):
    producer = HeldProducer()
    live, prediction = shard_with_agent_output(producer)
    prediction.set_exception(MessageSizeTooLargeError())  # what Faust's FutureMessage gets
    with pytest.raises(OutputLost, match="MessageSizeTooLargeError"):
        await live.checkpoint(0)
    assert producer.deliveries == [] and 0 not in tables["checkpoints"].data
    assert len(live.held[0]) == 10 and not any(event.acked for event in live.held[0])


async def test_agent_output_not_acknowledged_in_time_is_waited_for_again_next_time(
    tables, monkeypatch
):
    monkeypatch.setattr(models_module, "FLUSH_TIMEOUT", 0.05)
    producer = HeldProducer()
    live, prediction = shard_with_agent_output(producer)
    with pytest.raises(FlushTimeout, match="1 of 1 messages sent by the agents"):
        await live.checkpoint(0)
    assert producer.deliveries == [] and live.agent_output[0] == [prediction]
    acknowledge(prediction, 7)
    task = asyncio.ensure_future(live.checkpoint(0))
    await until(lambda: len(producer.deliveries) == 1)
    acknowledge(producer.deliveries[0], 1)
    await task
    assert live.checkpointed[0] == 9 and live.agent_output.get(0, []) == []


async def test_no_checkpoint_while_the_agent_is_between_a_step_and_its_sends(tables):
    producer = HeldProducer()
    live, prediction = shard_with_agent_output(producer)
    acknowledge(prediction, 7)
    live.stepping.add(0)
    await live.checkpoint(0, wait=True)
    assert producer.deliveries == [] and live.checkpointed[0] == -1
    live.stepping.discard(0)
    task = asyncio.ensure_future(live.checkpoint(0))
    await until(lambda: len(producer.deliveries) == 1)
    acknowledge(producer.deliveries[0], 1)
    await task
    assert live.checkpointed[0] == 9
