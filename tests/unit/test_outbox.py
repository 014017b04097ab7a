"""Slot appends straight to aiokafka's C batch builder: the batches must read back as sent."""

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from app.kafka.outbox import FlushTimeout, Outbox, Slot
from tests.unit.fakes import HeldProducer, acknowledge, settle, start_flush


def messages(batches: list) -> list[list[tuple]]:
    """(offset in batch, key, value, headers) of each message, per built batch."""
    out = []
    for batch in batches:
        records = MemoryRecords(bytes(batch._build()))
        read = []
        while records.has_next():
            for record in records.next_batch():
                read.append((record.offset, record.key, record.value, list(record.headers)))
        out.append(read)
    return out


def test_messages_read_back_in_order_with_their_offsets_keys_and_headers():
    slot = Slot("predictions", 0, lambda: BatchBuilder(16 * 1024, 0))
    slot.add(b"k0", b"v0")
    slot.add(None, b"v1", [("reason", b"why")])
    slot.add(b"k2", None)  # a tombstone
    [batch] = slot.take()
    assert batch.record_count() == 3
    assert messages([batch]) == [
        [(0, b"k0", b"v0", []), (1, None, b"v1", [("reason", b"why")]), (2, b"k2", None, [])]
    ]
    assert slot.take() == []  # nothing new: nothing to send


def test_a_full_batch_rolls_over_and_no_message_is_lost():
    slot = Slot("predictions", 0, lambda: BatchBuilder(200, 0))
    values = [b"%03d" % i + b"x" * 40 for i in range(20)]
    for i, value in enumerate(values):
        slot.add(b"k%d" % i, value)
    batches = slot.take()
    assert len(batches) > 2
    assert all(batch.closed() for batch in batches[:-1])
    read = messages(batches)
    assert [value for batch in read for _, _, value, _ in batch] == values
    # offsets restart at 0 in every batch: the broker assigns the real ones
    assert all([m[0] for m in batch] == list(range(len(batch))) for batch in read)


def test_a_message_larger_than_a_batch_travels_alone_in_a_batch_of_its_own():
    slot = Slot("predictions", 0, lambda: BatchBuilder(100, 0))
    slot.add(b"k", b"small")
    slot.add(b"k", b"x" * 500)  # the broker's message size limit applies, not the batch's
    slot.add(b"k", b"after")
    assert [[value for _, _, value, _ in batch] for batch in messages(slot.take())] == [
        [b"small"],
        [b"x" * 500],
        [b"after"],
    ]


async def test_a_flush_kafka_does_not_acknowledge_in_time_fails_and_is_awaited_again():
    producer = HeldProducer()
    outbox = Outbox(producer)
    outbox.add("checkpoints", 0, b"0", b"model")
    outbox.add("windows", 1, b"k", b"state")
    with pytest.raises(FlushTimeout, match=r"1 of 2 record batches within 0.05 s \(windows\[1\]\)"):
        task = await start_flush(producer, outbox, batches=2, timeout=0.05)
        acknowledge(producer.deliveries[0], 7)
        await task
    assert outbox.acked == {}  # nothing counts as written until the whole flush is
    acknowledge(producer.deliveries[1], 3)
    await outbox.flush(timeout=0.05)  # the next flush awaits the late batch again
    assert outbox.acked == {("checkpoints", 0): 7, ("windows", 1): 3}
    assert len(producer.deliveries) == 2  # and sends nothing twice


async def test_a_delivery_error_is_raised_by_the_flush_and_every_later_one():
    producer = HeldProducer()
    outbox = Outbox(producer)
    outbox.add("predictions", 0, b"e1", b"p")
    task = await start_flush(producer, outbox, batches=1)
    producer.deliveries[0].set_exception(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await task
    outbox.add("predictions", 0, b"e2", b"p")
    task = await start_flush(producer, outbox, batches=2)
    acknowledge(producer.deliveries[1], 5)
    with pytest.raises(KafkaTimeoutError):  # e1's prediction is lost: no flush is clean again
        await task


async def test_flushes_at_once_each_wait_for_every_batch_in_flight():
    producer = HeldProducer()
    outbox = Outbox(producer)
    outbox.add("predictions", 0, b"e1", b"p")
    first = await start_flush(producer, outbox, batches=1)
    second = asyncio.ensure_future(outbox.flush())  # e.g. another shard's checkpoint
    await settle()
    assert not first.done() and not second.done()  # the second waits for e1's batch too
    producer.deliveries[0].set_exception(KafkaTimeoutError())
    for flush in (first, second):
        with pytest.raises(KafkaTimeoutError):
            await flush


async def test_a_batch_the_producer_does_not_take_fails_the_flushes():
    producer = HeldProducer()
    outbox = Outbox(producer)

    async def refuse(batch, topic, *, partition):
        raise KafkaTimeoutError()  # aiokafka: its queue stayed full past the request timeout

    producer.send_batch = refuse
    outbox.add("predictions", 0, b"e1", b"p")
    with pytest.raises(KafkaTimeoutError):
        await outbox.send()
    with pytest.raises(KafkaTimeoutError):
        await outbox.flush()
