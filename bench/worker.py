"""streamlearn's side of the benchmark: one real worker process per run, on its own app id.

* :func:`drain`: the backlog is in Kafka before the worker starts; events/s is counted by the
  worker's engine from the moment it took its first event to the end of its last batch (the
  same span the peers time), its final Accuracy is read from ``GET /models/``, and the
  prediction messages it wrote are counted (the end offsets of its predictions topic).
* :func:`scale_out`: the same backlog on two partitions, drained by one worker or by two: the
  workers start first and own their partitions, then the backlog is produced (record batches:
  100k rows in under a second, several times faster than workers drain them), and events/s is
  that of the whole drain, from the first event any worker took to the end of the last batch
  any worker finished.
* :func:`latency`: events are produced at a fixed rate into a running worker; latency is the
  time from handing an event to the producer to reading its prediction from Kafka.
* :func:`memory`: resident memory of the worker as it sees more and more distinct keys.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from app import raw_fetch
from bench.peer_runs import count_messages, produce_parts
from bench.workloads import MODELS, WINDOW_FEATURES, Workload
from tests.integration.harness import Pipeline, Worker, ensure_topics, options, run, wait_for

#: The worker's settings in every run: streamlearn's defaults, but windows on feature "0" only.
SETTINGS = {"checkpoint_seconds": 2.0, "window_features": ",".join(WINDOW_FEATURES)}


@dataclass
class Drained:
    events_s: float
    accuracy: float
    peak_rss_mb: float
    #: prediction messages the worker wrote (one per event when it is right)
    predictions: int = 0


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _start(name: str, model: str, config: Path | None = None) -> Pipeline:
    """A pipeline of one partition (its topics created); ``config``: the worker's config file
    (STREAMLEARN_CONFIG: declared features)."""
    extra = {"config": str(config)} if config is not None else {}
    pipeline = Pipeline(name, partitions=1, model=MODELS[model].text, **SETTINGS, **extra)
    broker = pipeline.settings["BROKER"]
    topics = [pipeline.events, pipeline.labels]
    run(ensure_topics(broker, topics, 1, 1, options(pipeline.bootstrap)))
    return pipeline


def drain(workload: Workload, model: str, config: Path | None = None) -> Drained:
    """One worker draining ``workload`` from a backlog: events/s, Accuracy, peak RSS;
    ``config``: its config file (STREAMLEARN_CONFIG), e.g. bench/rich_features.toml."""
    pipeline = _start("bench", model, config)
    try:
        run(produce_parts(pipeline.bootstrap, pipeline.events, [workload]))  # (one partition)
        worker = pipeline.start_worker()
        n = len(workload.rows)
        name = MODELS[model].name
        wait_for(
            lambda: (e := worker.model(name)) and e["n_learned"] == n,
            timeout=3600,
            what=f"{n} learned",
        )
        (engine,) = _drained([worker], n)
        elapsed = engine["last_taken"] - engine["first_taken"]
        return Drained(
            events_s=n / elapsed,
            accuracy=worker.model(name)["metrics"]["Accuracy"],
            peak_rss_mb=_rss_mb(worker.process.pid, "VmHWM"),
            predictions=_predictions_written(pipeline, n),
        )
    finally:
        pipeline.stop()


def _drained(workers: list[Worker], n: int) -> list[dict]:
    """The engine stats of ``workers`` once they have taken ``n`` events between them, read
    again half a second later: an engine counts each slice of a read as it takes it, but sets
    ``last_taken`` once the whole read is done, so the first stats showing ``n`` events can
    still hold the end of the read before (a few hundred ms early, with 5,000-record reads)."""

    def engines() -> list[dict] | None:
        stats = [w.stats().get("engine") for w in workers]
        return stats if all(stats) and sum(e["events"] for e in stats) >= n else None

    wait_for(engines, timeout=3600, what=f"{n} events taken")
    time.sleep(0.5)  # (no event is left to take: the engines are idle from here)
    return wait_for(engines, what="the engines' stats")


def _predictions_written(pipeline: Pipeline, n: int, timeout: float = 30.0) -> int:
    """The prediction messages in ``pipeline``'s predictions topic, once there are ``n`` or
    ``timeout`` has passed (the engine counts an event before Kafka acknowledges its output)."""
    deadline = time.monotonic() + timeout
    while True:
        written = run(count_messages(pipeline.bootstrap, pipeline.predictions))
        if written >= n or time.monotonic() > deadline:
            return written
        time.sleep(0.2)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (aiokafka's, the Java client's) puts ``key`` in.

    >>> [partition_of(k, 2) for k in (b"b0", b"b1", b"b2", b"b3")]
    [0, 1, 0, 1]
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def split(workload: Workload, partitions: int) -> list[Workload]:
    """``workload``'s rows by the partition their Kafka key goes to, in order: what each model
    shard of a ``partitions``-partition events topic learns from."""
    parts = [
        Workload(f"{workload.name}, partition {p}", [], [], workload.keyed)
        for p in range(partitions)
    ]
    for row, key in zip(workload.rows, workload.keys, strict=True):
        part = parts[partition_of(key, partitions)]
        part.rows.append(row)
        part.keys.append(key)
    return parts


@dataclass
class ScaledOut:
    workers: int
    events: int
    events_s: float
    #: events each worker took
    taken: list[int]
    #: final Accuracy of each model shard (partition)
    accuracy: dict[int, float]
    predictions: int


def owns_all(engines: list[dict | None], partitions: int) -> bool:
    """Whether each worker's engine owns some partitions, and together they own each one once.

    >>> owns_all([{"partitions": [0]}, {"partitions": [1]}], 2)
    True
    >>> owns_all([{"partitions": [0, 1]}, {"partitions": []}], 2)
    False
    """
    if not all(e and e.get("partitions") for e in engines):
        return False
    owned = [p for e in engines for p in e["partitions"]]
    return sorted(owned) == list(range(partitions))


def whole_drain(engines: list[dict]) -> tuple[int, float]:
    """Events and seconds of a drain shared by workers: the sum of their events, from the first
    event any of them took to the end of the last batch any of them finished.

    >>> whole_drain([{"events": 60, "first_taken": 10.0, "last_taken": 14.0},
    ...              {"events": 40, "first_taken": 10.5, "last_taken": 15.0}])
    (100, 5.0)
    """
    busy = [e for e in engines if e["events"]]
    start = min(e["first_taken"] for e in busy)
    end = max(e["last_taken"] for e in busy)
    return sum(e["events"] for e in engines), end - start


def scale_out(workload: Workload, model: str, workers: int, partitions: int = 2) -> ScaledOut:
    """``workers`` fresh workers draining ``workload`` from ``partitions`` events partitions
    (rows routed by their Kafka key): events/s of the whole drain, each shard's Accuracy."""
    parts = split(workload, partitions)
    pipeline = Pipeline("scale", partitions=partitions, model=MODELS[model].text, **SETTINGS)
    try:
        # (the first start creates the events and labels topics with ``partitions`` partitions)
        started: list[Worker] = [pipeline.start_worker() for _ in range(workers)]
        wait_for(
            lambda: owns_all([w.stats().get("engine") for w in started], partitions),
            timeout=180,
            what=f"{workers} workers to own the {partitions} partitions between them",
        )
        run(produce_parts(pipeline.bootstrap, pipeline.events, parts))
        n = len(workload.rows)
        engines = _drained(started, n)
        events, elapsed = whole_drain(engines)
        name = MODELS[model].name
        accuracy = {}
        for w, engine in zip(started, engines, strict=True):
            for shard in engine["partitions"]:
                accuracy[shard] = w.model(name, shard)["metrics"]["Accuracy"]
        return ScaledOut(
            workers=workers,
            events=events,
            events_s=events / elapsed,
            taken=[e["events"] for e in engines],
            accuracy=accuracy,
            predictions=_predictions_written(pipeline, n),
        )
    finally:
        pipeline.stop()


def latency(workload: Workload, model: str, rate: float, seconds: float) -> dict:
    """p50/p99 milliseconds from producing an event to reading its prediction, at ``rate``/s."""
    pipeline = _start("latency", model)
    try:
        started = pipeline.start_worker()
        # the engine has declared the predictions topic once it reads its partitions
        wait_for(lambda: (e := started.stats().get("engine")) and e["partitions"], what="engine")
        n = min(len(workload.rows), int(rate * seconds))
        rows, keys = workload.rows[:n], workload.keys[:n]
        lat = run(_paced(pipeline, rows, keys, rate))
        skip = int(rate)  # the first second warms up the model and the connections
        lat = sorted(lat[skip:] if len(lat) > 2 * skip else lat)
        return {
            "rate": rate,
            "events": len(lat),
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        }
    finally:
        pipeline.stop()


async def _paced(pipeline: Pipeline, rows: list, keys: list, rate: float) -> list[float]:
    """Send ``rows`` at ``rate``/s, a record batch every 5 ms, and time each prediction.

    The driver shares the 2 cores with the worker and the broker: it hands each tick's events
    to the producer as one record batch and reads predictions as aiokafka's own records, so
    that its own cost per event stays small beside what it measures.
    """
    raw_fetch.install()
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    security = options(pipeline.bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.bootstrap,
        group_id=None,
        key_deserializer=raw_fetch.RAW,
        **security,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=0, **security
    )
    await consumer.start()
    await producer.start()
    try:
        partitions = consumer.partitions_for_topic(pipeline.predictions) or {0}
        consumer.assign([TopicPartition(pipeline.predictions, p) for p in partitions])
        await consumer.seek_to_end()

        async def read() -> None:
            while len(latencies) < len(rows):
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        t = sent.get(record.key)
                        if t is not None:
                            latencies.append(now - t)

        reader = asyncio.ensure_future(read())
        ids = [orjson.loads(row)["id"].encode() for row in rows]
        partition = 0  # the events topic of the latency run has one partition
        tick = 0.005
        per_tick = max(1, round(rate * tick))
        start = time.perf_counter()
        for i in range(0, len(rows), per_tick):
            due = start + (i / rate)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = producer.create_batch()
            for j in range(i, min(i + per_tick, len(rows))):
                batch.append(key=keys[j], value=rows[j], timestamp=None)
            now = time.perf_counter()
            for j in range(i, min(i + per_tick, len(rows))):
                sent[ids[j]] = now
            await producer.send_batch(batch, pipeline.events, partition=partition)
        await asyncio.wait_for(reader, timeout=120)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


def memory(workload: Workload, model: str, marks: list[int]) -> dict[int, float]:
    """Resident MB of one worker (RocksDB store) after it has taken each of ``marks`` events."""
    pipeline = _start("memory", model)
    try:
        run(produce_parts(pipeline.bootstrap, pipeline.events, [workload]))  # (one partition)
        worker = pipeline.start_worker()
        name = MODELS[model].name
        out = {}
        for mark in marks:
            wait_for(
                lambda m=mark: (e := worker.model(name)) and e["n_learned"] >= m,
                timeout=3600,
                what=f"{mark} learned",
            )
            out[mark] = _rss_mb(worker.process.pid)
        return out
    finally:
        pipeline.stop()
