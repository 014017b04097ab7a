"""LiveShard: its bookkeeping of what may be acknowledged, of holes in delivered offsets, and how
its checkpoint is written (tables as dicts, Kafka as a producer the test acknowledges)."""

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import TP

import tables.live_shard as live_shard_module
from app.kafka.outbox import FlushTimeout, Outbox
from app.models.shard import ShardModels
from app.models.spec import parse_specs
from app.settings import Settings
from tables.anchor import writing_to
from tables.checkpoints import OutputLost
from tables.live_shard import LiveShard
from tests.unit.fakes import (
    HeldProducer,
    acknowledge,
    fake_shard_tables,
    fake_table,
    settle,
    until,
)

TOPIC_PARTITION = TP("scoring", 0)


class FakeEvent:
    def __init__(self, offset: int) -> None:
        self.message = SimpleNamespace(offset=offset, tp=TOPIC_PARTITION)
        self.acked = False

    def ack(self) -> None:
        self.acked = True


SPECS = parse_specs("LogisticRegression")
RECIPE = Settings().recipe
#: the key-windows table every shard of these tests writes to
WINDOWS = fake_table("key-windows")


def shards_learned_up_to(offset: int, table=None) -> LiveShard:
    models = ShardModels.fresh(0, SPECS)
    models.offset = offset
    models.models["LogisticRegression"].n_learned = offset + 1
    return LiveShard(models, fake_shard_tables(SPECS, table, WINDOWS), 100, RECIPE)


def test_an_offset_past_the_next_needed_one_is_a_hole():
    live = shards_learned_up_to(329)
    assert not live.ahead_of(330)
    assert not live.ahead_of(300)
    assert live.ahead_of(332)


def test_only_covered_messages_are_acknowledged_the_early_ones_wait():
    live = shards_learned_up_to(329)
    early, duplicate = [FakeEvent(332), FakeEvent(333)], FakeEvent(325)
    for event in [*early, duplicate]:
        live.hold(event)
    assert live.early() == TOPIC_PARTITION
    live._ack_covered(covered=329)
    assert duplicate.acked and not any(e.acked for e in early)
    assert live.held == early


def test_seeks_back_at_most_once_a_second():
    live = shards_learned_up_to(329)
    assert live.should_seek()
    assert not live.should_seek()
    assert live.sought[:2] == (330, 1)


def test_a_fresh_shard_takes_its_first_offset_whatever_it_is():
    live = LiveShard(ShardModels.fresh(0, SPECS), fake_shard_tables(SPECS), 100, RECIPE)
    assert not live.ahead_of(57)


def test_checkpoint_coverage_is_the_stored_one_not_the_learned_one():
    live = shards_learned_up_to(329)
    live.models.offset = 400  # learned further, not checkpointed yet
    assert live.covered_by_checkpoint(329)
    assert not live.covered_by_checkpoint(350)


def test_a_shard_idle_below_the_end_of_its_partition_is_stalled():
    live = shards_learned_up_to(329)
    live.last_taken = 100.0
    assert live.stalled(highwater=400, now=103.0)
    assert not live.stalled(highwater=400, now=101.0)  # took something a moment ago
    assert not live.stalled(highwater=330, now=103.0)  # at the end
    assert not live.stalled(highwater=None, now=103.0)  # nothing fetched yet


def test_checkpoints_are_spaced_by_what_the_last_snapshot_cost():
    live = shards_learned_up_to(329)
    live.taken, live.last_checkpoint = 5000, 100.0

    def due(now: float, urgent: bool = False) -> bool:
        return live.due(now, every=1000, seconds=2.0, urgent=urgent)

    assert due(100.1)  # `every` (1000) events waiting
    live.taken = 10
    assert not due(101.0)
    assert due(101.0, urgent=True)  # a rebalance or shutdown
    assert due(102.0)  # `seconds` passed
    live.snapshot_seconds = 0.1  # a big model: pickling it took 100 ms
    assert not due(105.0)
    live.taken = 5000
    assert not due(105.0)  # even with `every` events waiting
    assert due(110.0)  # SNAPSHOT_SHARE_INVERSE (100) x 0.1 s later
    live.snapshot_seconds = 5.0  # a huge model: 500 s by the rule above
    assert not due(129.0)
    assert due(130.0)  # but never more than MAX_CHECKPOINT_SPACING (30 s)
    live.taken = 0
    assert not due(200.0, urgent=True)  # nothing to checkpoint


@pytest.fixture
def tables():
    """The checkpoint and window tables as dicts, and Faust's producer as one with no output."""
    WINDOWS.data.clear()
    return {"checkpoints": fake_table("shard-checkpoints"), "windows": WINDOWS}


def shard_with_output(producer: HeldProducer, tables: dict) -> LiveShard:
    """Shard 0 learned up to offset 329 from the engine, with one key's windows changed and
    the prediction of its last event waiting in the outbox."""
    live = shards_learned_up_to(329, tables["checkpoints"])
    live.checkpointed, live.taken = -1, 330
    with writing_to(0, "unit-scoring"):
        live.windows.update("k", 10.0, {"a": 1.0})
    live.checkpoints.outbox = Outbox(producer)
    live.checkpoints.outbox.add("predictions", 0, b"e329", b"p")
    return live


async def test_a_checkpoint_is_stored_once_kafka_has_it_and_after_the_output_it_covers(tables):
    producer = HeldProducer()
    live = shard_with_output(producer, tables)
    task = asyncio.ensure_future(live.checkpoint())
    await until(lambda: len(producer.deliveries) == 2)  # the prediction and the window values
    assert live.writing[0] == "flushing output"
    acknowledge(producer.deliveries[0], 10)
    await settle()
    assert len(producer.deliveries) == 2  # no checkpoint sent before all its output is in Kafka
    acknowledge(producer.deliveries[1], 20)
    await until(lambda: len(producer.deliveries) == 3)
    assert 0 not in tables["checkpoints"].data  # sent, not acknowledged: not stored yet
    acknowledge(producer.deliveries[2], 30)
    await task
    stored = live.checkpoints.codec.loads(tables["checkpoints"].data[0])
    assert stored["offset"] == 329
    assert tables["checkpoints"].data.persisted[1] == 30
    assert live.checkpointed == 329 and live.taken == 0 and live.writing is None


async def test_output_kafka_does_not_acknowledge_fails_the_checkpoint_which_is_tried_again(
    tables, monkeypatch
):
    monkeypatch.setattr(live_shard_module, "FLUSH_TIMEOUT", 0.05)
    producer = HeldProducer()
    live = shard_with_output(producer, tables)
    with pytest.raises(FlushTimeout):
        await live.checkpoint()
    assert len(producer.deliveries) == 2 and 0 not in tables["checkpoints"].data
    assert live.checkpointed == -1 and live.taken == 330 and live.writing is None
    assert "k" in live.windows.clean  # its window values are written again next time
    for offset, delivery in enumerate(producer.deliveries):
        acknowledge(delivery, offset)
    task = asyncio.ensure_future(live.checkpoint())
    for sent in (3, 4):  # the window values again, then the checkpoint
        await until(lambda n=sent: len(producer.deliveries) == n)
        acknowledge(producer.deliveries[-1], sent)
    await task
    assert live.checkpoints.codec.loads(tables["checkpoints"].data[0])["offset"] == 329


async def test_output_kafka_refuses_stops_the_checkpoint_that_would_cover_it(tables):
    producer = HeldProducer()
    live = shard_with_output(producer, tables)
    task = asyncio.ensure_future(live.checkpoint())
    await until(lambda: len(producer.deliveries) == 2)
    producer.deliveries[0].set_exception(MessageSizeTooLargeError())  # after aiokafka's retries
    acknowledge(producer.deliveries[1], 0)
    with pytest.raises(OutputLost, match="shard 0 learned since its last checkpoint"):
        await task
    assert len(producer.deliveries) == 2 and 0 not in tables["checkpoints"].data
    assert live.checkpointed == -1 and "k" in live.windows.clean
    with pytest.raises(OutputLost):  # nor later, e.g. while the worker stops: it is gone
        await live.checkpoint()
    assert len(producer.deliveries) == 2 and 0 not in tables["checkpoints"].data


async def test_a_revocation_waits_for_the_checkpoint_in_progress_then_writes_its_own(tables):
    producer = HeldProducer()
    live = shard_with_output(producer, tables)
    running = asyncio.ensure_future(live.checkpoint())  # the checkpoint loop's
    await until(lambda: len(producer.deliveries) == 2)
    await live.checkpoint()  # another caller that need not wait: skipped
    revoking = asyncio.ensure_future(live.checkpoint(wait=True))
    with writing_to(0, "unit-scoring"):  # the engine takes one more event meanwhile
        live.windows.update("k", 11.0, {"a": 1.0})
    live.models.offset, live.taken = 330, live.taken + 1
    for sent in (1, 2, 3):  # the prediction, the window values, the checkpoint at 329
        await until(lambda n=sent: len(producer.deliveries) >= n)
        acknowledge(producer.deliveries[sent - 1], sent)
    await running
    assert not revoking.done()
    for sent in (4, 5):  # then the revocation's own: window values, the checkpoint at 330
        await until(lambda n=sent: len(producer.deliveries) == n)
        acknowledge(producer.deliveries[-1], sent)
    await revoking
    assert live.checkpoints.codec.loads(tables["checkpoints"].data[0])["offset"] == 330
    assert live.taken == 0 and live.checkpointed == 330


class TransactionalProducer(HeldProducer):
    """A transactional producer: what was sent, and each commit as the number of deliveries
    it covered; ``refuse`` makes the next commit fail as a fenced producer's does."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[int] = []
        self.begun = 1  # (ShardOutbox.open began the first)
        self.refuse: Exception | None = None
        self.committing = asyncio.Event()
        self.release = asyncio.Event()

    async def commit_transaction(self) -> None:
        self.committing.set()
        await self.release.wait()
        if self.refuse is not None:
            raise self.refuse
        self.commits.append(len(self.deliveries))

    async def begin_transaction(self) -> None:
        self.begun += 1


def transactional_shard(producer: TransactionalProducer, tables: dict) -> LiveShard:
    """shard_with_output's shard, exactly_once: its own outbox holds the prediction."""
    from dataclasses import replace

    from app.kafka.transaction import ShardOutbox

    live = shards_learned_up_to(329, tables["checkpoints"])
    live.tables = replace(live.tables, exactly_once=True)
    live.checkpointed, live.taken = -1, 330
    with writing_to(0, "unit-scoring"):
        live.windows.update("k", 10.0, {"a": 1.0})
    live.checkpoints.outbox = Outbox(HeldProducer())  # (the engine's: the engine runs)
    live.own_outbox = ShardOutbox(producer)
    live.own_outbox.add("predictions", 0, b"e329", b"p")
    return live


async def test_exactly_once_a_checkpoint_commits_with_its_output_and_nothing_steps_meanwhile(
    tables,
):
    producer = TransactionalProducer()
    live = transactional_shard(producer, tables)
    assert live.steppable()
    task = asyncio.ensure_future(live.checkpoint())
    # the prediction, the window values and the checkpoint in one transaction, then its commit
    await until(lambda: len(producer.deliveries) == 3)
    for offset, delivery in enumerate(producer.deliveries):
        acknowledge(delivery, offset)
    await until(producer.committing.is_set)
    assert not live.steppable() and 0 not in tables["checkpoints"].data  # (not committed yet)
    live.own_outbox.add("predictions", 0, b"e330", b"q")  # (what a step now would write)
    producer.release.set()
    await task
    assert producer.commits == [3] and producer.begun == 2 and live.steppable()
    assert live.checkpoints.codec.loads(tables["checkpoints"].data[0])["offset"] == 329
    assert live.checkpointed == 329 and live.taken == 0
    assert live.checkpoints.outbox.producer.deliveries == []  # nothing by the engine's producer


async def test_exactly_once_a_commit_that_fails_stops_the_shard_s_checkpoints(tables):
    producer = TransactionalProducer()
    live = transactional_shard(producer, tables)
    producer.refuse = RuntimeError("ProducerFenced: another worker opened shard 0")
    producer.release.set()
    task = asyncio.ensure_future(live.checkpoint())
    await until(lambda: len(producer.deliveries) == 3)
    for offset, delivery in enumerate(producer.deliveries):
        acknowledge(delivery, offset)
    with pytest.raises(OutputLost, match="shard 0 learned since its last checkpoint"):
        await task
    assert producer.commits == [] and 0 not in tables["checkpoints"].data
    assert live.checkpointed == -1 and live.steppable() and "k" in live.windows.clean
