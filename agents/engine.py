"""The batch engine: validate, enrich, score and learn each owned events partition in one pass.

Faust stays in charge of who owns what: a worker owns model shard ``p`` when Faust assigns it
partition ``p`` of ``scoring`` (co-partitioned with ``events``, ``join`` and the tables). For
each owned shard this service reads partition ``p`` of ``events`` itself, thousands of records
per read, with an aiokafka consumer that has no group and commits nothing: the shard's
checkpoint holds the last events offset it took (``origins["e<p>"]``), and reading restarts
right after it. So a model learns each event exactly once through crashes and rebalances, the
windows of its keys with it (tables/windows.py), and the per-event cost is River's plus a few
microseconds instead of Faust's per-message path.

Per record: decode and check (bad ones go to ``<events>-dlq`` with the reason in headers),
windowed aggregates for keyed events, one-hot strings, then ``ShardModels.take_event``:
predict, score and learn when the label is inline, else park the features for the label join.
Predictions go to partition ``p % partitions`` of the predictions topic in record batches.
Delayed labels still travel through agents/labels.py and ``scoring`` to agents/learner.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from mode import Service

from app import app, raw_fetch, settings
from app.features import HOPPING, TUMBLING, add_aggregates, one_hot, window_values
from app.kafka_admin import bootstrap_servers
from app.label_rules import label_check
from app.outbox import Outbox, Slot
from app.raw_fetch import RAW
from app.records import Malformed, dead_letter_headers, parse_event
from app.shard import ShardModels
from app.topics import declare, enriched, events, events_dlq, join, predictions
from tables.anchor import writing_to
from tables.counters import count, remember_reject
from tables.models import assigned_shards, live_shards
from tables.windows import ShardWindows

log = logging.getLogger(__name__)

#: Records stepped between two hand-overs of their predictions to the producer (a read holds
#: up to STREAMLEARN_BATCH_SIZE): ~15 ms of work on a 2-core machine.
PUBLISH_EVERY = 250

#: Allocations between collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 50_000


class EngineError(RuntimeError):
    """The batch engine cannot run with this topic layout; the text says what to change."""


class Engine(Service):
    """Reads the events partitions of the shards this worker owns and steps their models."""

    def __post_init__(self) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.outbox: Outbox | None = None
        self.owned: set[int] = set()
        self.partitions: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.window_features = settings.window_feature_names
        self.check_label = label_check(live_shards.specs)
        #: records read from the events topic, and events taken by a model shard
        self.n_received = 0
        self.n_events = 0
        self.n_misrouted = 0
        #: wall-clock time the engine first took an event, and last finished a batch
        self.first_taken: float | None = None
        self.last_taken: float | None = None
        #: events not read yet, per (topic, partition) read
        self.lag: dict[tuple[str, int], int] = {}

    async def on_start(self) -> None:
        # The worker has started: the objects it holds now (Faust, River, the tables' caches)
        # live as long as it does. Taking them out of the cyclic collector's sight, and letting
        # it run less often, keeps each event's garbage cheap to collect.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 100)
        servers = bootstrap_servers(settings.broker)
        raw_fetch.install()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            key_deserializer=RAW,  # records as aiokafka reads them: no ConsumerRecord each
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # batches are formed per read already
            max_batch_size=512 * 1024,
            # as patient as Faust's own producer (20 min by default): aiokafka's default (40 s)
            # drops a batch Kafka did not take in that time, which stops the worker (lost
            # output) when a broker is unreachable for longer; with this, the engine waits for
            # Kafka (a checkpoint still fails after FLUSH_TIMEOUT and is tried again)
            request_timeout_ms=int(app.conf.producer_request_timeout * 1000),
            # checkpoints go through it too (tables/models.py), as large as Faust's producer takes
            max_request_size=app.conf.producer_max_request_size,
        )
        await self.consumer.start()
        await self.producer.start()
        self.outbox = Outbox(self.producer)
        live_shards.outbox = self.outbox  # flushed by every checkpoint

    async def on_stop(self) -> None:
        # Faust checkpoints the shards when it stops (the learner's loop); write what is left.
        self.owned = set()
        for shard in list(live_shards.shards):
            try:
                await live_shards.checkpoint(shard, wait=True)
            except Exception:  # noqa: BLE001 - shutting down: the replay covers it
                log.exception("shard %d: final checkpoint failed", shard)
        if live_shards.outbox is self.outbox:
            live_shards.outbox = None  # its producer stops here
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def own(self, shards: set[int]) -> None:
        """Read exactly ``shards`` from now on, each from the first offset its models lack."""
        await self.ready.wait()
        self.owned = set(shards)
        tps = [TopicPartition(settings.events_topic, p) for p in sorted(shards)]
        self.consumer.assign(tps)
        for tp in tps:
            models = live_shards.shards[tp.partition]
            self.consumer.seek(tp, models.origins.get(f"e{tp.partition}", -1) + 1)
        if shards:
            log.info("engine: reading %s partitions %s", settings.events_topic, sorted(shards))

    def release(self, shards: set[int]) -> None:
        """Stop taking events of ``shards`` (revoked); their checkpoint is written next."""
        self.owned -= shards
        for shard in shards:
            self.lag.pop((settings.events_topic, shard), None)

    def stats(self) -> dict:
        """What ``GET /stats/`` shows of the engine."""
        return {
            "events": self.n_events,
            "first_taken": self.first_taken,
            "last_taken": self.last_taken,
            "misrouted": self.n_misrouted,
            "partitions": sorted(self.owned),
        }

    @Service.task
    async def _run(self) -> None:
        await declare(events, predictions, join, events_dlq, *([enriched] if enriched else []))
        try:
            await self._check_layout()
        except EngineError as exc:
            log.critical("%s", exc)
            await app.crash(exc)
            return
        self.ready.set()
        # Faust recovered the tables before this start; own what is assigned now
        await self.own(assigned_shards() & set(live_shards.shards))
        while not self.should_stop:
            if not self.owned:
                await asyncio.sleep(0.05)
                continue
            # No pause while Faust rebalances: a revoked shard is released (and checkpointed)
            # by the revocation handler between two reads, and its records are dropped here.
            batch = await self.consumer.getmany(timeout_ms=200, max_records=settings.batch_size)
            if batch and self.first_taken is None:
                self.first_taken = time.time()
            for tp, records in batch.items():
                self.n_received += len(records)
                for start in range(0, len(records), PUBLISH_EVERY):
                    await self._take(tp.partition, records[start : start + PUBLISH_EVERY])
                    # predictions leave while the rest of the read is stepped: an event's
                    # latency does not grow with the size of the read it came in
                    try:
                        await self.outbox.send()
                    except Exception as exc:  # the producer refused batches: output is lost
                        lost = live_shards.output_lost(tp.partition, exc)
                        log.critical("%s", lost)
                        await app.crash(lost)
                        return
                    await asyncio.sleep(0)  # the producer's and the fetcher's turn
                highwater = self.consumer.highwater(tp)
                if highwater is not None:
                    self.lag[(tp.topic, tp.partition)] = max(0, highwater - records[-1].offset - 1)
            if batch:
                self.last_taken = time.time()
            # checkpoints are written by the learner's checkpoint loop, beside this one

    async def _check_layout(self) -> None:
        for topic in (settings.events_topic, settings.predictions_topic, join.get_topic_name()):
            parts = await self.producer.partitions_for(topic)
            self.partitions[topic] = len(parts)
        for topic in (settings.dlq_topic, settings.enriched_topic):
            if topic:
                self.partitions[topic] = len(await self.producer.partitions_for(topic))
        n_events = self.partitions[settings.events_topic]
        if n_events != settings.partitions:
            raise EngineError(
                f"topic {settings.events_topic!r} has {n_events} partitions but "
                f"STREAMLEARN_PARTITIONS={settings.partitions}: the batch engine reads events "
                "partition p into model shard p. Set STREAMLEARN_PARTITIONS to "
                f"{n_events}, or STREAMLEARN_ENGINE=agents (re-keys events through Kafka)."
            )

    async def _take(self, shard: int, records: list) -> None:
        models = live_shards.shards.get(shard)
        if models is None or shard not in self.owned:
            return  # revoked while these were read
        windows = live_shards.windows[shard]
        origin = f"e{shard}"
        last = taken_upto = models.origins.get(origin, -1)
        topic = settings.predictions_topic
        predictions = self.outbox.slot(topic, shard % self.partitions[topic])
        step = self._step
        taken = 0
        with writing_to(shard):
            try:
                for record in records:
                    offset = record.offset
                    if offset <= last:
                        continue
                    step(shard, models, windows, record, predictions)
                    taken_upto = offset
                    taken += 1
            finally:  # (an error stops the engine: what was taken is still counted right)
                if taken:
                    models.origins[origin] = taken_upto
                    live_shards.taken[shard] += taken
                    self.n_events += taken
        live_shards.last_taken[shard] = time.monotonic()

    def _step(
        self,
        shard: int,
        models: ShardModels,
        windows: ShardWindows,
        record,
        out: Slot,
    ) -> None:
        """Take one events record; its predictions go to ``out``."""
        now = time.time()
        try:
            event = parse_event(record.value)
        except Malformed as exc:
            self._reject(shard, record, str(exc), "dead_letters", now)
            return
        if "y" in event:  # a label the models cannot learn: before any of them counts the event
            problem = self.check_label(event["y"])
            if problem is not None:
                self._reject(shard, record, problem, "dead_letters", now)
                return
        key = event["key"]
        if key is not None:
            if settings.partitions > 1 and record.key is not None and record.key != key.encode():
                self.n_misrouted += 1
            self._add_windows(windows, event, key)
        event["x"] = one_hot(event["x"])
        # no duplicate check: the offset check in _take already drops what the shard has taken
        try:
            predictions, park = models.take_event(event, now, record.timestamp / 1000.0)
        except Exception as exc:  # a model that cannot take this event must not stop the shard
            reason = f"model failed on event {event['id']!r}: {type(exc).__name__}: {exc}"
            self._reject(shard, record, reason, "model_errors", now)
            return
        for prediction in predictions:
            out.add(prediction["id"].encode(), orjson.dumps(prediction))
        if park is not None:
            self._park(park)
        if settings.enriched_topic:
            event["kind"] = "event"
            event["t_in"] = record.timestamp / 1000.0
            topic = settings.enriched_topic
            partition = shard % self.partitions[topic]
            self.outbox.add(topic, partition, record.key, orjson.dumps(event))

    def _park(self, park: dict) -> None:
        """Send an unlabelled event's features to the label join, keyed by event id."""
        park_key = park["id"].encode()
        join_topic = join.get_topic_name()
        n = self.partitions[join_topic]
        self.outbox.add(
            join_topic, (murmur2(park_key) & 0x7FFFFFFF) % n, park_key, orjson.dumps(park)
        )

    def _add_windows(self, windows: ShardWindows, event: dict, key: str) -> None:
        ts = event["ts"]
        previous, tumbling, hopping = windows.update(
            key, ts, window_values(event["x"], self.window_features)
        )
        # x is this event's own dict (decoded from its record): extended in place
        add_aggregates(event["x"], {TUMBLING: tumbling, HOPPING: hopping}, previous, ts)

    def _reject(self, shard: int, record, reason: str, counter: str, now: float) -> None:
        source = settings.events_topic  # (the engine's records are aiokafka's own: no .topic)
        log.warning("rejected %s[%d]@%d: %s", source, shard, record.offset, reason)
        count(counter, shard)
        remember_reject(counter, shard, reason, record.offset, now)
        topic = settings.dlq_topic
        self.outbox.add(
            topic,
            shard % self.partitions[topic],
            record.key,
            record.value if record.value is not None else b"",
            dead_letter_headers(reason, source, shard, record.offset),
        )


#: The engine of this worker, or None when STREAMLEARN_ENGINE=agents. Faust starts it once the
#: tables are recovered, and stops it before the tables and the producer.
engine: Engine | None = None
if settings.engine == "batch":
    engine = Engine()
    app.service(engine)
