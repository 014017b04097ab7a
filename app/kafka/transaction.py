"""One shard's output in Kafka transactions: STREAMLEARN_PROCESSING_GUARANTEE=exactly_once.

With ``exactly_once``, each model shard writes everything it produces (predictions, the shadow
topic, parked features, dead letters, model events, the enriched topic, and its window values,
versions and checkpoint) through a :class:`ShardOutbox`: an :class:`~app.kafka.outbox.Outbox`
whose producer has the transactional id ``<id>-shard-<p>`` and is always in a transaction.
A checkpoint commits it (:meth:`ShardOutbox.commit`) and the next begins at once, so what a
``read_committed`` consumer sees of a shard is exactly the output of the events its last
checkpoint covers: after a ``kill -9`` the open transaction is aborted, and the events it held
are learned again and their output written once more, in a transaction that commits.

The id is the shard's, not the worker's: whichever worker opens shard ``p`` next (a restart, or
another worker after a rebalance) fences the one before (Kafka aborts its open transaction and
refuses its next write or commit: ``ProducerFenced``), so a worker that lost a shard without
knowing it (a long pause) cannot commit output for it any more.

Reads nothing; keeps the producer until :meth:`ShardOutbox.close`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from app.kafka.admin import bootstrap_servers
from app.kafka.auth import client_options
from app.kafka.outbox import Outbox

#: How long a shard's transaction may stay open. Checkpoints (commits) are at most 30 s apart
#: (tables/live_shard.py); a transaction left open by a killed worker is aborted at once when
#: the shard is assigned again (its next owner opens it), else after this.
TRANSACTION_TIMEOUT_MS = 120_000


def engine_producer(
    config: Any, request_timeout: float, max_request_size: int, **transactional: Any
) -> AIOKafkaProducer:
    """The producer the engine's output leaves through (``transactional``: one shard's, with
    ``transactional_id``), set up as ``config`` says: ``request_timeout`` seconds (Faust's
    ``producer_request_timeout``), messages up to ``max_request_size`` bytes (checkpoints)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(config.broker),
        **client_options(config.settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=0,  # batches are formed per read already
        max_batch_size=512 * 1024,
        # as patient as Faust's own producer (20 min by default): aiokafka's default (40 s)
        # drops a batch Kafka did not take in that time, which stops the worker (lost output)
        # when a broker is unreachable for longer; with this, the engine waits for Kafka (a
        # checkpoint still fails after FLUSH_TIMEOUT and is tried again)
        request_timeout_ms=int(request_timeout * 1000),
        # checkpoints go through it too, as large as Faust's producer takes
        max_request_size=max_request_size,
        **transactional,
    )


def shard_outboxes(
    config: Any, request_timeout: float, max_request_size: int
) -> Callable[[int], Awaitable[ShardOutbox]]:
    """What opens a shard's :class:`ShardOutbox` for ``config``'s app (exactly_once)."""

    def make(tid: str) -> AIOKafkaProducer:
        return engine_producer(
            config,
            request_timeout,
            max_request_size,
            transactional_id=tid,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        )

    async def open_outbox(shard: int) -> ShardOutbox:
        return await ShardOutbox.open(make, transactional_id(config.id, shard))

    return open_outbox


def transactional_id(app_id: str, shard: int) -> str:
    """The transactional id of ``shard``'s output.

    >>> transactional_id("fraud", 3)
    'fraud-shard-3'
    """
    return f"{app_id}-shard-{shard}"


class ShardOutbox(Outbox):
    """An outbox whose messages leave in transactions, one per checkpoint."""

    @classmethod
    async def open(cls, make_producer: Callable[[str], AIOKafkaProducer], tid: str) -> ShardOutbox:
        """Start a producer with transactional id ``tid`` (fencing any earlier one: its open
        transaction is aborted) and begin the first transaction."""
        producer = make_producer(tid)
        await producer.start()  # (InitProducerId: the fence)
        try:
            await producer.begin_transaction()
        except BaseException:
            await producer.stop()
            raise
        return cls(producer)

    async def commit(self) -> None:
        """Send what is gathered, commit the transaction (every message of it becomes visible to
        ``read_committed`` consumers at once) and begin the next. An error (the transaction
        could not commit, this producer was fenced) is raised: its messages are never seen."""
        await self.flush()
        await self.producer.commit_transaction()
        await self.producer.begin_transaction()

    async def close(self) -> None:
        """Stop the producer; a transaction still open is aborted by Kafka (at once when the
        shard is opened again, else when it times out)."""
        await self.producer.stop()
