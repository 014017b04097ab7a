"""Messages to produce, gathered per topic partition into Kafka record batches.

The engine writes a prediction per event (and one per challenger to the shadow topic);
aiokafka's ``send()`` costs more per message than learning it, so messages are appended to a
record batch of their topic partition (a C-level append) and each full or pending batch is
handed to the producer at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from app.compat import append_to_batch


class FlushTimeout(Exception):
    """Kafka did not acknowledge a flush's batches in time."""


#: What a message without headers carries (the record batch reads it, never changes it).
NO_HEADERS: list = []


class Slot:
    """The batches of one ``(topic, partition)``: the one being filled, and full ones."""

    __slots__ = ("topic", "partition", "create", "batch", "full")

    def __init__(self, topic: str, partition: int, create: Callable[[], object]) -> None:
        self.topic = topic
        self.partition = partition
        self.create = create
        self.batch = create()
        self.full: list = []

    def add(self, key: bytes | None, value: bytes | None, headers: list = NO_HEADERS) -> None:
        """Append one message (``value`` None: a tombstone)."""
        batch = self.batch
        # aiokafka's BatchBuilder.append, without its keyword parsing and serializer calls
        # (the producer has none): the C builder's own append (app/compat.py)
        if append_to_batch(batch, key, value, headers):
            return
        batch.close()
        self.full.append(batch)
        self.batch = self.create()
        if self.batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
            raise ValueError(f"a message of {len(value or b'')} bytes is larger than a batch")

    def take(self) -> list:
        """The batches holding messages, to send now; the slot starts a new one."""
        taken, self.full = self.full, []
        if self.batch.record_count():
            taken.append(self.batch)
            self.batch = self.create()
        return taken


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (aiokafka's, the Java client's) puts ``key`` in:
    where a producer keying by entity sends an event, and so the shard that owns the key.

    >>> [partition_of(k, 2) for k in (b"b0", b"b1", b"b2", b"b3")]
    [0, 1, 0, 1]
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Outbox:
    """Record batches per ``(topic, partition)``, sent by :meth:`send`, awaited by :meth:`flush`."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.slots: dict[tuple[str, int], Slot] = {}
        self.sent: list[tuple[str, int, asyncio.Future]] = []
        #: base offset of the last batch Kafka acknowledged, per (topic, partition)
        self.acked: dict[tuple[str, int], int] = {}
        #: the first delivery error (those messages are lost): raised by every later flush
        self.failed: BaseException | None = None
        #: one send at a time: a flush then also waits for the batches of a send in progress,
        #: and batches of one partition reach the producer in the order they were filled
        self._sending = asyncio.Lock()

    def slot(self, topic: str, partition: int) -> Slot:
        """The batches of ``topic[partition]`` (the engine keeps the one it writes to most)."""
        slot = self.slots.get((topic, partition))
        if slot is None:
            slot = self.slots[(topic, partition)] = Slot(
                topic, partition, self.producer.create_batch
            )
        return slot

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence = (),
    ) -> None:
        """Append one message (``value`` None: a tombstone) to the batch of ``topic[partition]``."""
        self.slot(topic, partition).add(key, value, list(headers) if headers else NO_HEADERS)

    async def send(self) -> None:
        """Hand every batch gathered so far to the producer (delivery goes on in the background).

        A batch the producer does not take (its queue stayed full past its request timeout, or
        it is closed) is a delivery error too: it is kept as :attr:`failed`.
        """
        async with self._sending:
            pending = [(s.topic, s.partition, b) for s in self.slots.values() for b in s.take()]
            self._settle()
            for topic, partition, batch in pending:
                try:
                    future = await self.producer.send_batch(batch, topic, partition=partition)
                except BaseException as exc:  # this batch and the rest of `pending` are lost
                    if self.failed is None:
                        self.failed = (
                            exc
                            if isinstance(exc, Exception)
                            else KafkaError(f"sending batches was interrupted: {exc!r}")
                        )
                    raise
                self.sent.append((topic, partition, future))

    async def flush(self, timeout: float | None = None) -> None:
        """Send what is gathered and wait until Kafka has acknowledged every message.

        Raises the delivery error of any batch (now, and at every later flush: its messages are
        lost), so that no checkpoint is ever written over lost output; and :class:`FlushTimeout`
        after ``timeout`` seconds. Several flushes may wait at once (checkpoints of different
        shards): each waits for every batch in flight when it began.
        """
        await self.send()
        waiting = [future for _, _, future in self.sent]
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=timeout)
            if pending:
                late = sorted({f"{t}[{p}]" for t, p, f in self.sent if f in pending})
                raise FlushTimeout(
                    f"Kafka has not acknowledged {len(pending)} of {len(waiting)} record batches "
                    f"within {timeout:g} s ({', '.join(late)}); they are awaited again next time"
                )
        self._settle()
        if self.failed is not None:
            raise self.failed

    def _settle(self) -> None:
        """Count the deliveries that completed; keep the first that failed as :attr:`failed`."""
        in_flight = []
        for topic, partition, future in self.sent:
            if not future.done():
                in_flight.append((topic, partition, future))
            elif (error := delivery_error(future, f"a batch to {topic}[{partition}]")) is not None:
                if self.failed is None:
                    self.failed = error
            else:
                self._acknowledged(topic, partition, future.result())
        self.sent = in_flight

    def _acknowledged(self, topic: str, partition: int, metadata) -> None:
        slot = (topic, partition)
        self.acked[slot] = max(self.acked.get(slot, -1), metadata.offset)


def delivery_error(future: asyncio.Future, what: str) -> BaseException | None:
    """Why the finished delivery ``future`` of ``what`` failed (None: Kafka has it)."""
    if future.cancelled():
        return KafkaError(f"the delivery of {what} was cancelled")
    return future.exception()
