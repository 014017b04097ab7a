"""Messages to produce, gathered per topic partition into Kafka record batches.

The engine writes one prediction per event and model; aiokafka's ``send()`` costs more per
message than learning it, so messages are appended to a record batch of their topic partition
(a C-level append) and each full or pending batch is handed to the producer at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer


class Outbox:
    """Record batches per ``(topic, partition)``, sent by :meth:`send`, awaited by :meth:`flush`."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.batches: dict[tuple[str, int], object] = {}
        self.full: list[tuple[str, int, object]] = []
        self.sent: list[tuple[str, int, asyncio.Future]] = []
        #: base offset of the last batch Kafka acknowledged, per (topic, partition)
        self.acked: dict[tuple[str, int], int] = {}

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence = (),
    ) -> None:
        """Append one message (``value`` None: a tombstone) to the batch of ``topic[partition]``."""
        slot = (topic, partition)
        batch = self.batches.get(slot)
        if batch is None:
            batch = self.batches[slot] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
            self.full.append((topic, partition, batch))
            batch = self.batches[slot] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                raise ValueError(f"a message of {len(value or b'')} bytes is larger than a batch")

    async def send(self) -> None:
        """Hand every batch gathered so far to the producer (delivery goes on in the background)."""
        pending = [*self.full, *((t, p, b) for (t, p), b in self.batches.items())]
        self.full, self.batches = [], {}
        # keep only deliveries still in flight or failed (a failure is raised by flush)
        self.sent = [s for s in self.sent if not s[2].done() or s[2].exception() is not None]
        for topic, partition, batch in pending:
            future = await self.producer.send_batch(batch, topic, partition=partition)
            self.sent.append((topic, partition, future))

    async def flush(self) -> None:
        """Send what is gathered and wait until Kafka has acknowledged every message.

        Raises the first delivery error, so that a checkpoint is never written over lost output.
        """
        await self.send()
        sent, self.sent = self.sent, []
        results = await asyncio.gather(*(future for _, _, future in sent))
        for (topic, partition, _), metadata in zip(sent, results, strict=True):
            slot = (topic, partition)
            self.acked[slot] = max(self.acked.get(slot, -1), metadata.offset)
