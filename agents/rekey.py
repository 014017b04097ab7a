"""The re-key stage (``STREAMLEARN_REKEY=1``): events keyed by entity, whatever their producer did.

Reads: the raw events topic (any partition count, any Kafka keys), as bytes, in the consumer
group ``<id>-rekey`` (each worker re-keys the raw partitions that group gives it).
Writes: each message unchanged to ``<id>-rekeyed`` (``STREAMLEARN_PARTITIONS`` partitions),
keyed and so partitioned by its ``key`` field, or its ``id`` when it has no key, with its origin
in the ``sl-src`` header (``b"<raw partition>:<offset>"``). A message that is not an event is
passed on too (keyed by its Kafka key, else its origin): the engine dead-letters it with the
reason and its origin, in one place. With ``format = "avro"`` in ``[events]``, the mapping's key
is read from the decoded record: each read's writer schemas are loaded first into the stage's
own decoder (``RegistryClient.load_retrying``; a registry that cannot be reached pauses the stage,
and stops the worker after STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT, nothing of the read sent).
Keeps: the offsets of what it sent. They are committed to the group only once Kafka has
acknowledged every copy before them (after each read, and before a partition is given up in a
rebalance), so every event reaches ``<id>-rekeyed`` at least once, in the order of its raw
partition; the copies a crash makes it send again carry an origin offset the shard has taken
already, and the engine drops them (``agents/engine.py``).

A Faust service with an aiokafka consumer of its own rather than a Faust stream: a Faust stream
can deliver a partition with offsets skipped (seen here after ``kill -9``: re-keyed events
arrived after later ones of their raw partition, and the origin check dropped them as copies),
while aiokafka's consumer reads each partition in order, without gaps.
"""

from __future__ import annotations

import asyncio
import logging

import faust
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from app.config import Config
from app.contracts.avro import AvroDecoder
from app.contracts.mapping import Origin
from app.kafka import raw_fetch
from app.kafka.admin import bootstrap_servers
from app.kafka.auth import client_options
from app.kafka.raw_fetch import RAW
from app.kafka.registry import RegistryUnavailable
from app.kafka.topics import Topics, declare

log = logging.getLogger(__name__)

#: The header a re-keyed record carries its origin in: ``b"<partition>:<offset>"``.
ORIGIN_HEADER = "sl-src"
#: ... and its own Kafka key, if it had one (a mapping may take the key from it).
KEY_HEADER = "sl-key"


def routing_key(raw: bytes | None, kafka_key: bytes | None, origin: bytes) -> bytes:
    """The key an event is re-keyed by: its ``key`` field, else its ``id``; a message that is
    not a JSON object with either keeps its Kafka key, else gets its origin.

    >>> routing_key(b'{"id": "e1", "key": "card-1"}', None, b"0:5")
    b'card-1'
    >>> routing_key(b'{"id": "e1", "key": null}', b"k", b"0:5")
    b'e1'
    >>> routing_key(b"not json", None, b"0:5"), routing_key(b"[1]", b"k", b"0:5")
    (b'0:5', b'k')
    """
    try:
        value = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        for field in ("key", "id"):
            chosen = value.get(field)
            if isinstance(chosen, str) and chosen:
                return chosen.encode()
    return kafka_key if kafka_key is not None else origin


class _Revoked(ConsumerRebalanceListener):
    def __init__(self, stage: Rekey) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked) -> None:
        await self.stage.confirm()  # the next owner starts right after what Kafka has

    async def on_partitions_assigned(self, assigned) -> None:
        log.info("re-key: reading %s", sorted(tp.partition for tp in assigned))


class Rekey(Service):
    """Copies raw events to ``<id>-rekeyed`` keyed by entity, committing what Kafka has."""

    def __init__(
        self, app: faust.App, config: Config, topics: Topics, registry=None, **kwargs
    ) -> None:
        self.app = app
        self.config = config
        self.topics = topics
        #: the schema registry's client (Avro events), else None
        self.registry = registry
        super().__init__(**kwargs)

    def __post_init__(self) -> None:
        self.target = f"{self.config.id}-rekeyed"
        self.mapping = self.config.event_mapping
        avro = self.mapping is not None and self.mapping.fields.format == "avro"
        #: Avro events: what decodes them, to read their key (the engine has its own)
        self.decoder = AvroDecoder() if avro else None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        #: copies sent and not confirmed yet, and the offsets to commit once they are
        self.pending: list[asyncio.Future] = []
        self.offsets: dict = {}
        self.lock = asyncio.Lock()
        self.n_received = 0
        self.lag: dict[tuple[str, int], int] = {}

    async def on_start(self) -> None:
        servers = bootstrap_servers(self.config.broker)
        raw_fetch.install()
        self.producer = AIOKafkaProducer(
            bootstrap_servers=servers,
            **client_options(self.config.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=int(self.app.conf.producer_request_timeout * 1000),
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            **client_options(self.config.settings),
            group_id=f"{self.config.id}-rekey",
            key_deserializer=RAW,  # aiokafka's own records (app/kafka/raw_fetch.py)
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await self.producer.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            try:
                await self.confirm()
            except Exception:  # noqa: BLE001 - stopping: the next start sends them again
                log.exception("re-key: last copies not confirmed")
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    def received(self) -> dict[str, int]:
        return {self.config.events_topic: self.n_received}

    @Service.task
    async def _run(self) -> None:
        await declare(self.topics.events, self.topics.rekeyed)
        self.consumer.subscribe([self.config.events_topic], listener=_Revoked(self))
        while not self.should_stop:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            if self.decoder is not None and batch:
                values = [r.value for records in batch.values() for r in records]
                try:
                    await self.registry.load_retrying(
                        self.decoder, values, self.config.schema_registry_timeout
                    )
                except RegistryUnavailable as exc:
                    log.critical("re-key: stopping, reading paused too long: %s", exc)
                    await self.app.crash(exc)
                    return
            async with self.lock:
                for tp, records in batch.items():
                    await self._forward(tp, records)
            try:
                await self.confirm()
            except _Lost as exc:
                log.critical("%s", exc)
                await self.app.crash(exc)
                return

    async def _forward(self, tp, records: list) -> None:
        send = self.producer.send
        partition = str(tp.partition).encode()
        mapping = self.mapping
        for record in records:
            origin = partition + b":" + str(record.offset).encode()
            if mapping is None:
                key = routing_key(record.value, record.key, origin)
            else:
                source = Origin(tp.topic, tp.partition, record.offset, record.key, 0)
                key = mapping.routing_key(record.value, source, self.decoder)
            headers = [(ORIGIN_HEADER, origin)]
            if record.key is not None:
                headers.append((KEY_HEADER, record.key))
            self.pending.append(
                await send(
                    self.target,
                    record.value,
                    key=key,
                    headers=headers,
                    timestamp_ms=record.timestamp,  # the event's own: a mapping may read it
                )
            )
        self.n_received += len(records)
        self.offsets[tp] = records[-1].offset + 1
        highwater = self.consumer.highwater(tp)
        if highwater is not None:
            self.lag[(tp.topic, tp.partition)] = max(0, highwater - records[-1].offset - 1)

    async def confirm(self) -> None:
        """Wait until Kafka has every copy sent so far, then commit the offsets after them."""
        async with self.lock:
            pending, self.pending = self.pending, []
            offsets, self.offsets = self.offsets, {}
            if pending:
                await asyncio.wait(pending)
                for sent in pending:
                    if sent.cancelled() or sent.exception() is not None:
                        error = "cancelled" if sent.cancelled() else repr(sent.exception())
                        raise _Lost(
                            f"re-key: Kafka did not take a copy of an event ({error}): stopping "
                            "before its offset is committed; the next start sends it again"
                        )
            if offsets:
                try:
                    await self.consumer.commit(offsets)
                except (CommitFailedError, IllegalStateError) as exc:
                    # given up in a rebalance meanwhile: the next owner sends them again, and
                    # the engine drops those copies
                    log.warning("re-key: offsets not committed (%s)", exc)


class _Lost(RuntimeError):
    """A copy was not delivered: its offset must not be committed."""
