"""The engine: validate, enrich, score and learn each owned events partition in one pass.

Reads: for each shard ``p`` this worker owns (``agents/shards.py``), partition ``p`` of the
events topic, or of ``<id>-rekeyed`` with ``STREAMLEARN_REKEY=1`` (``agents/rekey.py``),
thousands of records per read, with an aiokafka consumer that has no group and commits nothing:
the shard's checkpoint holds the last offset it took (``origins["e<p>"]``), and reading restarts
right after it. So a model learns each event exactly once through crashes and rebalances, the
windows of its keys with it (tables/windows.py), and the per-event cost is River's plus a few
microseconds instead of Faust's per-message path.

With ``format = "avro"`` in ``[events]``, before a read is stepped the writer schemas of its
messages are loaded into the intake's decoder (``RegistryClient.load_retrying``: each id fetched
once; an id the registry does not know after a fresh lookup is refused, and its messages
dead-lettered with the reason). While the registry cannot be reached, the read waits, unstepped,
and the lookup is retried with backoff: no checkpoint covers it, and nothing good is
dead-lettered. After ``STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT`` the worker stops with the reason
(``app.crash``); a restart reads on from the last checkpoint.

Per record (:meth:`Engine.take`, then :meth:`Engine._step`, a router): the per-event step of
``app/step.py`` (decode and check, windowed aggregates of keyed events, one-hot strings, then
predict, and score and learn an inline label, else park the features for the label join); the
engine writes what it gives, a refused record to ``<events>-dlq`` with the reason in headers
(``tables.counters.refuse``). A re-keyed record carries its origin (raw partition and offset) in
the ``sl-src`` header: a copy the re-key stage sent again after a crash (origin offset not above
the shard's ``origins["r<q>"]``) is dropped and counted.

A read is stepped in turns of about :data:`TURN` seconds (:data:`BACKLOG_TURN` while a backlog
drains), each followed by a turn of the event loop: a request to ``POST /predict/``, a label or
a heartbeat waits for one turn at most, not for a whole read.

Writes: the champion's predictions to partition ``p % partitions`` of the predictions topic
(the challengers' to the shadow topic), as JSON, or with STREAMLEARN_PREDICTIONS_FORMAT=avro in
Confluent's wire format with the schema id registered at start-up
(``app/contracts/prediction_avro.py``), parked features to ``<id>-join`` (by event id), dead
letters, the model events of its shards (promotions, drifts, versions) and the enriched topic if
set, all as record batches of one outbox, which every checkpoint flushes; with
STREAMLEARN_PROCESSING_GUARANTEE=exactly_once, of each shard's own transactional outbox
(app/kafka/transaction.py), which its checkpoints commit. Keeps: its consumer and producer, what
it read and took (``GET /stats/`` "engine").
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from agents.rekey import KEY_HEADER, ORIGIN_HEADER
from agents.shards import Shards
from app.config import Config
from app.contracts.intake import Intake
from app.contracts.mapping import Origin
from app.contracts.prediction_avro import PredictionEncoder
from app.kafka import raw_fetch
from app.kafka.admin import bootstrap_servers
from app.kafka.auth import client_options
from app.kafka.outbox import Outbox, Slot, partition_of
from app.kafka.raw_fetch import RAW
from app.kafka.registry import RegistryUnavailable
from app.kafka.topics import Topics, declare
from app.kafka.transaction import engine_producer
from app.step import Refused, Step
from tables.anchor import writing_to
from tables.counters import Counters
from tables.live_shard import LiveShard

log = logging.getLogger(__name__)

#: Records stepped between two hand-overs of their predictions to the producer (a read holds
#: up to STREAMLEARN_BATCH_SIZE): ~15 ms of work on a 2-core machine.
PUBLISH_EVERY = 250
#: ... when a read brings at least BACKLOG_READ records of a partition: the engine is behind,
#: and each hand-over (a produce request, a turn of the event loop) costs throughput while the
#: records wait in Kafka anyway; 1,000 instead of 250 drained a backlog 5 % faster (paired runs)
BACKLOG_READ = 2000
BACKLOG_PUBLISH_EVERY = 1000


def publish_every(n_records: int) -> int:
    """Records stepped between two hand-overs, in a read of ``n_records`` of one partition.

    >>> publish_every(300), publish_every(5000)
    (250, 1000)
    """
    return BACKLOG_PUBLISH_EVERY if n_records >= BACKLOG_READ else PUBLISH_EVERY


#: Seconds of stepping records before the engine gives the event loop a turn: what a request to
#: ``POST /predict/`` (or a label, a heartbeat) waits for the engine at most, about.
TURN = 0.002
#: ... while the engine drains a backlog (reads of BACKLOG_READ records or more): each turn of
#: the loop costs tens of microseconds, and a turn every 2 ms cost a backlog's drain 3 % (paired
#: runs); a request then waits up to this long per turn
BACKLOG_TURN = 0.010


def turn_size(planned: int, size: int, spent: float, most: int, turn: float = TURN) -> int:
    """Records to step in a turn, after ``size`` records took ``spent`` seconds in a turn
    planned for ``planned``: as many as a ``turn`` of seconds holds at that pace, moving at
    most 2x a turn (one slow event, a collection, does not swing it), at least 1 and at most
    ``most``.

    >>> turn_size(100, 100, 0.004, 1000), turn_size(100, 100, 0.0, 1000)
    (50, 200)
    >>> turn_size(100, 100, 0.0015, 1000), turn_size(20, 4, 0.0004, 1000)
    (133, 20)
    >>> turn_size(100, 100, 0.002, 1000, BACKLOG_TURN)
    200
    """
    wanted = size * turn / spent if spent > 0 else 2 * planned
    return max(1, min(most, 2 * planned, max(planned // 2, round(wanted))))


#: Allocations between collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 50_000


class EngineError(RuntimeError):
    """The engine cannot run with this topic layout; the text says what to change."""


def origin_of(headers) -> tuple[int, int, bytes | None] | None:
    """The raw ``(partition, offset, Kafka key)`` a re-keyed record came from, from its headers.

    >>> origin_of([("x", b"1"), ("sl-src", b"2:41"), ("sl-key", b"k")]), origin_of([])
    ((2, 41, b'k'), None)
    """
    found = None
    key = None
    for name, value in headers:
        if name == ORIGIN_HEADER:
            partition, _, offset = value.partition(b":")
            found = int(partition), int(offset)
        elif name == KEY_HEADER:
            key = value
    return None if found is None else (*found, key)


class Engine(Service):
    """Reads the events partitions of the shards this worker owns and steps their models."""

    def __init__(
        self,
        app: faust.App,
        config: Config,
        keeper: Shards,
        topics: Topics,
        counters: Counters,
        registry: Any = None,
        prediction_ids: dict[str, int] | None = None,
        **kwargs,
    ) -> None:
        self.app = app
        self.config = config
        self.keeper = keeper
        self.topics = topics
        self.counters = counters
        #: the schema registry's client (``app.kafka.registry.RegistryClient``; None: no Avro)
        self.registry = registry
        #: STREAMLEARN_PREDICTIONS_FORMAT=avro: the schema id registered for each predictions
        #: topic (None: predictions as JSON)
        self.prediction_ids = prediction_ids
        super().__init__(**kwargs)

    def __post_init__(self) -> None:
        config = self.config
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.outbox: Outbox | None = None
        self.partitions: dict[str, int] = {}
        self.ready = asyncio.Event()
        #: the topic the engine reads: the events topic, or the re-keyed one
        self.source = f"{config.id}-rekeyed" if config.rekey else config.events_topic
        self.rekeyed = config.rekey
        #: where unlabelled events' features are parked (``app.kafka.topics.join``)
        self.join_topic = config.internal("join")
        #: the topic whose partition a shard's table writes are placed by (its shard)
        self.anchor = config.internal("scoring")
        #: where the challengers' predictions go (None: the champion has none)
        self.shadow = config.shadow_predictions_topic if len(config.specs) > 1 else None
        #: the shadow topic's batches of the shard being taken, and its outbox
        self.shadow_out: Slot | None = None
        self.current: Outbox | None = None
        #: what turns a prediction into a message's value, for the predictions topic and the
        #: shadow topic: JSON, or Avro in Confluent's wire format with the registered schema id
        self.encode: Callable[[dict], bytes] = orjson.dumps
        self.encode_shadow: Callable[[dict], bytes] = orjson.dumps
        if self.prediction_ids is not None:
            self.use_prediction_ids(self.prediction_ids)
        #: STREAMLEARN_PROCESSING_GUARANTEE=exactly_once: each shard's output in transactions
        self.exactly_once = config.exactly_once
        #: what a message goes through before windows and models (app/contracts/intake.py)
        self.intake = Intake.configured(config)
        #: the per-event logic (app/step.py); the engine routes records through it
        self.step = Step(self.intake)
        #: how a message of a team's own shape maps to an event (None: streamlearn's shape)
        self.mapping = self.intake.mapping
        #: ``format = "avro"``: the intake's decoder, given each read's schemas before its step
        self.decoder = self.intake.decoder
        if self.decoder is not None and self.registry is None:
            raise EngineError("[events] format = 'avro' needs the schema registry's client")
        #: since when reading waits for the registry (None: it does not), and how many waits
        self.registry_paused: float | None = None
        self.registry_waits = 0
        #: records read, and events taken by a model shard
        self.n_received = 0
        self.n_events = 0
        self.n_misrouted = 0
        #: how many times the shards read were set (:meth:`read`): a read made before the last
        #: one is stale
        self.epoch = 0
        #: records stepped in one turn of the event loop (:func:`turn_size`): from a few, it
        #: doubles each turn up to what a turn holds
        self.turn_size = 16
        #: what turns are timed by (a test drives it)
        self.clock = time.perf_counter
        #: wall-clock time the engine first took an event, and last finished a batch
        self.first_taken: float | None = None
        self.last_taken: float | None = None

    def use_prediction_ids(self, ids: dict[str, int]) -> None:
        """Write predictions (and the shadow topic's) as Avro with the schema id registered for
        each topic (``ids``, by topic: the worker's start-up registers them)."""
        self.prediction_ids = ids
        self.encode = PredictionEncoder(ids[self.config.predictions_topic])
        if self.shadow is not None:
            self.encode_shadow = PredictionEncoder(ids[self.shadow])

    async def on_start(self) -> None:
        # The worker has started: the objects it holds now (Faust, River, the tables' caches)
        # live as long as it does. Taking them out of the cyclic collector's sight, and letting
        # it run less often, keeps each event's garbage cheap to collect.
        if self.config.settings.predictions_format == "avro" and self.prediction_ids is None:
            raise EngineError(  # (never predictions as JSON on a topic its readers take as Avro)
                "STREAMLEARN_PREDICTIONS_FORMAT=avro: the prediction schema is not registered "
                "(faust -A app worker registers it before the worker starts)"
            )
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 100)
        servers = bootstrap_servers(self.config.broker)
        raw_fetch.install()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            **client_options(self.config.settings),
            key_deserializer=RAW,  # records as aiokafka reads them: no ConsumerRecord each
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            # (exactly_once: a transactional producer's events count once they are committed)
            isolation_level="read_committed" if self.exactly_once else "read_uncommitted",
        )
        conf = self.app.conf
        self.producer = engine_producer(
            self.config, conf.producer_request_timeout, conf.producer_max_request_size
        )
        await self.consumer.start()
        await self.producer.start()
        self.outbox = Outbox(self.producer)
        # checkpoints flush this outbox; exactly_once: each shard writes through its own
        self.keeper.start(self, self.outbox)

    async def on_stop(self) -> None:
        # the last checkpoints, before the producer they go through stops
        await self.keeper.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.registry is not None:
            await self.registry.close()

    async def read(self, offsets: dict[int, int]) -> None:
        """Read exactly the shards of ``offsets`` from now on, each from its offset (the first
        its models lack). Before the engine is ready (topics checked), nothing: it reads what
        the keeper holds then."""
        if not self.ready.is_set():
            return
        if self.exactly_once:  # each shard's transactions open before anything is read
            for shard in offsets:
                live = self.keeper.owned(shard)
                if live is not None:
                    await self.keeper.opened(live)
        tps = {TopicPartition(self.source, shard): offset for shard, offset in offsets.items()}
        # a read in progress came from the positions before this one: the rest of it is dropped
        # (a shard restored meanwhile may start before it: stepping it would skip events)
        self.epoch += 1
        self.consumer.assign(list(tps))
        for tp, offset in tps.items():
            self.consumer.seek(tp, offset)
        if offsets:
            log.info("engine: reading %s partitions %s", self.source, sorted(offsets))

    @property
    def lag(self) -> dict[tuple[str, int], int]:
        """Events not read yet, per (topic, partition) read."""
        return {(self.source, shard): lag for shard, lag in self.keeper.lags().items()}

    def stats(self) -> dict:
        """What ``GET /stats/`` shows of the engine."""
        return {
            "events": self.n_events,
            "first_taken": self.first_taken,
            "last_taken": self.last_taken,
            "misrouted": self.n_misrouted,
            "partitions": self.keeper.reading(),
            "source": self.source,
            "registry_paused": self.registry_paused,
            "registry_waits": self.registry_waits,
        }

    def received(self) -> dict[str, int]:
        """Records read per topic."""
        return {self.source: self.n_received}

    @Service.task
    async def _checkpoints(self) -> None:
        await self.keeper.run_checkpoints()

    @Service.task
    async def _run(self) -> None:
        t = self.topics
        outputs = [t.predictions, t.join, t.events_dlq, t.labels_dlq]
        outputs += [t.enriched] if t.enriched else []
        outputs += [t.shadow] if t.shadow else []
        outputs += [t.model_events]
        await declare(t.events, *([t.rekeyed] if self.rekeyed else []), *outputs)
        try:
            await self._check_layout()
        except EngineError as exc:
            log.critical("%s", exc)
            await self.app.crash(exc)
            return
        self.ready.set()
        # Faust recovered the tables before this start: read what the keeper holds now
        await self.read(self.keeper.read_offsets())
        while not self.should_stop:
            if not self.keeper.reading():
                await asyncio.sleep(0.05)
                continue
            # No pause while Faust rebalances: a revoked shard is released (and checkpointed)
            # by the revocation handler between two reads, and its records are dropped here.
            batch = await self.consumer.getmany(timeout_ms=200, max_records=self.config.batch_size)
            if batch and self.first_taken is None:
                self.first_taken = time.time()
            lost = await self.take_read(batch)
            if lost is not None:
                log.critical("%s", lost)
                await self.app.crash(lost)
                return
            if batch:
                self.last_taken = time.time()

    async def take_read(self, batch: dict) -> Exception | None:
        """Step one read (records by topic partition) into the shards, giving the event loop a
        turn every :data:`TURN` seconds of stepping (a request to ``/predict/``, a label, a
        heartbeat waits no longer for the engine) and handing their output to the producer
        every few hundred records; the rest of the read is dropped once the shards read were
        set again meanwhile (:meth:`read`: its records come again from the new positions). An
        error of the producer: output is lost, returned. With Avro, the read's writer schemas are
        loaded first (:meth:`load_schemas`); a registry unreachable for longer than
        STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT is returned too, nothing of the read stepped."""
        if self.decoder is not None and batch:
            lost = await self.load_schemas(batch)
            if lost is not None:
                return lost
        epoch = self.epoch
        clock = self.clock
        for tp, records in batch.items():
            self.n_received += len(records)
            every = publish_every(len(records))
            turn = TURN if len(records) < BACKLOG_READ else BACKLOG_TURN
            done = published = 0
            while done < len(records):
                if self.epoch != epoch:
                    return None
                live = self.keeper.read_by_engine(tp.partition)
                if live is not None and not live.steppable():
                    await self.keeper.opened(live)  # (exactly_once: a commit in progress)
                    continue
                planned = self.turn_size
                size = min(planned, every - (done - published), len(records) - done)
                started = clock()
                self.take(tp.partition, records[done : done + size])
                self.turn_size = turn_size(planned, size, clock() - started, every, turn)
                done += size
                if done - published >= every or done == len(records):
                    # predictions leave while the rest of the read is stepped: an event's
                    # latency does not grow with the size of the read it came in
                    published = done
                    try:
                        await (self.outbox_of(live) if live is not None else self.outbox).send()
                    except Exception as exc:  # the producer refused batches: output is lost
                        return self.keeper.output_lost(tp.partition, exc)
                await asyncio.sleep(0)  # the loop's turn: requests, the producer, the fetcher
            live = self.keeper.read_by_engine(tp.partition)
            if live is not None and self.epoch == epoch:
                live.read_to(records[-1].offset, self.consumer.highwater(tp))
        return None

    async def load_schemas(self, batch: dict) -> Exception | None:
        """Give the decoder the writer schema of every record of ``batch``: nothing is stepped
        meanwhile (a registry that cannot be reached pauses reading, retried with backoff);
        the error once it has lasted STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT."""
        values = [record.value for records in batch.values() for record in records]

        def waiting(error: RegistryUnavailable, seconds: float) -> None:
            if self.registry_paused is None:
                self.registry_paused = time.time()
            self.registry_waits += 1
            log.warning("%s; reading paused, trying again in %.1f s", error, seconds)

        try:
            await self.registry.load_retrying(
                self.decoder, values, self.config.schema_registry_timeout, waiting
            )
        except RegistryUnavailable as exc:
            return RegistryUnavailable(f"engine: stopping, reading paused too long: {exc}")
        if self.registry_paused is not None:
            log.info(
                "engine: the schema registry answers again after %.1f s; reading on",
                time.time() - self.registry_paused,
            )
            self.registry_paused = None
        return None

    async def _check_layout(self) -> None:
        for topic in (self.source, self.config.predictions_topic, self.join_topic):
            self.partitions[topic] = len(await self.producer.partitions_for(topic))
        for topic in (
            self.config.dlq_topic,
            self.config.labels_dlq_topic,
            self.config.enriched_topic,
            self.shadow,
            self.config.model_events,
        ):
            if topic:
                self.partitions[topic] = len(await self.producer.partitions_for(topic))
        n_source = self.partitions[self.source]
        if n_source != self.config.partitions:
            fix = (
                f"Set STREAMLEARN_PARTITIONS to {n_source}, or STREAMLEARN_REKEY=1 (re-keys "
                "events through an internal topic of STREAMLEARN_PARTITIONS partitions)."
                if not self.rekeyed
                else "Start over under a new STREAMLEARN_ID (its topics are created for it)."
            )
            raise EngineError(
                f"topic {self.source!r} has {n_source} partitions but "
                f"STREAMLEARN_PARTITIONS={self.config.partitions}: the engine reads partition p "
                f"into model shard p. {fix}"
            )

    def take(self, shard: int, records: list) -> int:
        """Step ``records`` (of partition ``shard`` of the source topic) into the shard's models;
        records it took already, and records of a shard not owned, are skipped. Returns how many
        it took."""
        live = self.keeper.read_by_engine(shard)
        if live is None:
            return 0  # revoked while these were read
        last = taken_upto = live.events_offset
        topic = self.config.predictions_topic
        outbox = self.current = self.outbox_of(live)
        out = outbox.slot(topic, shard % self.partitions[topic])
        if self.shadow is not None:
            self.shadow_out = outbox.slot(self.shadow, shard % self.partitions[self.shadow])
        step = self._step_rekeyed if self.rekeyed else self._step
        taken = 0
        with writing_to(shard, self.anchor):
            try:
                for record in records:
                    offset = record.offset
                    if offset <= last:
                        continue
                    step(live, record, out)
                    taken_upto = offset
                    taken += 1
            finally:  # (an error stops the engine: what was taken is still counted right)
                live.took(taken_upto, taken)
                self.n_events += taken
        if live.models.model_events:
            self.publish_model_events(live)
        return taken

    def outbox_of(self, live: LiveShard) -> Outbox:
        """Where ``live``'s output goes: the engine's outbox, or (exactly_once) the shard's own,
        open once :meth:`agents.shards.Shards.opened` said so."""
        return live.own_outbox if self.exactly_once else self.outbox

    def publish_model_events(self, live: LiveShard) -> None:
        """Write what happened to ``live``'s models (promotions, changes at a restore) to the
        model-events topic, with the output of the events that caused it."""
        topic = self.config.model_events
        partition = live.shard % self.partitions[topic]
        models, now, outbox = live.models, time.time(), self.outbox_of(live)
        for record in models.take_model_events():
            record["t"] = now  # (when it was written: the dashboard's table)
            models.recent_events.append(record)
            key = f"{record['shard']}".encode()
            outbox.add(topic, partition, key, orjson.dumps(record))
            log.info("shard %d: model event %s", live.shard, record.get("reason"))

    def _step_rekeyed(self, live: LiveShard, record, out: Slot) -> None:
        """A re-keyed record: dropped if a copy of it was taken, else stepped."""
        origin = origin_of(record.headers)
        if origin is None:  # not written by the re-key stage: taken as it is
            self._step(live, record, out)
            return
        partition, offset, key = origin
        if not live.first_copy(partition, offset):
            return
        self._step(live, record, out, (self.config.events_topic, partition, offset, key))

    def _step(self, live: LiveShard, record, out: Slot, source: tuple | None = None) -> None:
        """Route one events record through :meth:`app.step.Step.take` and write what it gives:
        predictions to ``out``, a dead letter, parked features, the enriched event."""
        now = time.time()
        origin = None
        if self.mapping is not None:
            topic, partition, offset, key = source or (
                self.source,
                live.shard,
                record.offset,
                record.key,
            )
            origin = Origin(topic, partition, offset, key, record.timestamp)
        t_in = record.timestamp / 1000.0
        taken = self.step.take(record.value, origin, now, live.windows, live.models, t_in)
        if taken.flags:
            live.count_flags(taken.flags)
        if type(taken) is Refused:
            if taken.reason is None:
                self.counters.count(taken.counter, live.shard)  # dropped by the transform
            else:
                self._reject(live.shard, record, taken.reason, taken.counter, now, source)
            return
        event = taken.event
        key = event["key"]
        if (
            key is not None
            and self.config.partitions > 1
            and record.key is not None
            and record.key != key.encode()
        ):
            self.n_misrouted += 1
        predictions = taken.predictions
        if predictions:  # the champion's to the predictions topic, the challengers' to the shadow
            champion = predictions[0]
            out.add(champion["id"].encode(), self.encode(champion))
            for prediction in predictions[1:]:
                self.shadow_out.add(prediction["id"].encode(), self.encode_shadow(prediction))
        if taken.park is not None:
            self._park(taken.park)
        if self.config.enriched_topic:
            event["kind"] = "event"
            event["t_in"] = t_in
            topic = self.config.enriched_topic
            partition = live.shard % self.partitions[topic]
            self.current.add(topic, partition, record.key, orjson.dumps(event))

    def _park(self, park: dict) -> None:
        """Send an unlabelled event's features to the label join, keyed by event id."""
        park_key = park["id"].encode()
        n = self.partitions[self.join_topic]
        self.current.add(self.join_topic, partition_of(park_key, n), park_key, orjson.dumps(park))

    def _reject(
        self, shard: int, record, reason: str, counter: str, now: float, source: tuple | None
    ) -> None:
        # a re-keyed copy carries the raw message's own Kafka key: the dead letter gets it back
        topic, partition, offset, key = source or (self.source, shard, record.offset, record.key)
        headers = self.counters.refuse(counter, shard, reason, (topic, partition, offset), now)
        value = record.value if record.value is not None else b""
        self.dead_letter(shard, key, value, headers, self.config.dlq_topic)

    def dead_letter(
        self, shard: int, key: bytes | None, value: bytes, headers: list, dlq: str
    ) -> None:
        """Send ``value`` (a message of ``shard``) to ``dlq`` (the events' or the labels'
        dead-letter topic) with the next checkpoint's output (``headers``: from
        ``tables.counters.refuse``)."""
        live = self.keeper.owned(shard)
        outbox = self.outbox_of(live) if live is not None else self.outbox
        outbox.add(dlq, shard % self.partitions[dlq], key, value, headers)
