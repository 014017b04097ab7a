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

Nothing here assumes this machine's speed: a wait for a worker (events learned, events taken,
predictions read back) fails only once its count has stood still for :data:`STALL` seconds, or at
once if the worker exited, and says how far it got ("got N of M ..."); the latency driver sends
every row, however many a 5 ms tick holds (:func:`send_rows`).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka import raw_fetch
from app.kafka.outbox import partition_of
from bench.peer_runs import count_messages, produce_parts
from bench.workloads import MODELS, WINDOW_FEATURES, Workload
from tests.integration.harness import (
    ARTIFACTS,
    ROOT,
    Pipeline,
    Worker,
    ensure_topics,
    options,
    run,
    wait_for,
)

#: The worker's settings in every run: streamlearn's defaults, but windows on feature "0" only.
SETTINGS = {"checkpoint_seconds": 2.0, "window_features": ",".join(WINDOW_FEATURES)}
#: Seconds a wait may see its count stand still (no event learned or taken, no prediction read)
#: before it fails: a worker's start-up (the harness allows 90 s to serve its stats) and its
#: checkpoints and rebalances pause it for far less, here and on a machine several times slower.
#: A run as long as the work: a slower machine takes longer, a stuck one fails within this.
STALL = 120.0
#: The latency driver's record batches (aiokafka's max_batch_size; its default, 16 KB, holds 56
#: of the bench's rows): a 5 ms tick of one batch up to 1,800 rows (360,000 events/s), as a
#: streamlearn worker's own producer (512 KiB), below the broker's 1 MB message.max.bytes.
TICK_BATCH_BYTES = 512 * 1024


@dataclass
class Drained:
    events_s: float
    accuracy: float
    peak_rss_mb: float
    #: prediction messages the worker wrote (one per event when it is right)
    predictions: int = 0
    #: every final metric of the model, by class name (Accuracy among them)
    metrics: dict = field(default_factory=dict)


def wait_count(
    count: Callable[[], int | None],
    target: int,
    what: str,
    workers: Sequence[Worker] = (),
    stall: float = STALL,
    poll: float = 0.2,
) -> int:
    """Poll ``count()`` until it reaches ``target``, and return it. Fails with the count reached:
    TimeoutError once it has not grown for ``stall`` seconds, RuntimeError as soon as one of
    ``workers`` has exited. (An exception of ``count()``, e.g. a worker not serving yet, is
    no progress; the last one is said.)"""
    got, last_error = 0, None
    moved = time.monotonic()
    while True:
        for w in workers:
            if w.process is not None and w.process.poll() is not None:
                raise RuntimeError(
                    f"got {got:,} of {target:,} {what}: a worker exited with "
                    f"{w.process.returncode}; see {w.log_path}"
                )
        try:
            now = count() or 0
        except Exception as exc:  # noqa: BLE001 - no progress; said if it lasts
            last_error = exc
        else:
            if now >= target:
                return now
            if now > got:
                got, moved = now, time.monotonic()
        if time.monotonic() - moved > stall:
            error = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(
                f"got {got:,} of {target:,} {what}, none more for {stall:g} s{error}"
            )
        time.sleep(poll)


def _learned(worker: Worker, name: str) -> int:
    """Events ``worker``'s model ``name`` (shard 0) has learned (0 before it has one)."""
    entry = worker.model(name)
    return entry["n_learned"] if entry else 0


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _start(name: str, model: str, config: Path | None = None, **settings: object) -> Pipeline:
    """A pipeline of one partition (its topics created); ``config``: the worker's config file
    (STREAMLEARN_CONFIG: declared features, a mapping); ``settings``: more of its settings."""
    extra = {"config": str(config)} if config is not None else {}
    extra.update(settings)
    pipeline = Pipeline(name, partitions=1, model=MODELS[model].text, **SETTINGS, **extra)
    broker = pipeline.settings["BROKER"]
    topics = [pipeline.events, pipeline.labels]
    run(ensure_topics(broker, topics, 1, 1, options(pipeline.bootstrap)))
    return pipeline


def drain(
    workload: Workload, model: str, config: Path | None = None, **settings: object
) -> Drained:
    """One worker draining ``workload`` from a backlog: events/s, Accuracy, peak RSS;
    ``config``: its config file (STREAMLEARN_CONFIG), e.g. bench/rich_features.toml;
    ``settings``: more of its settings (``schema_registry_url=...``)."""
    pipeline = _start("bench", model, config, **settings)
    try:
        run(produce_parts(pipeline.bootstrap, pipeline.events, [workload]))  # (one partition)
        worker = pipeline.start_worker()
        n = len(workload.rows)
        name = MODELS[model].name
        wait_count(partial(_learned, worker, name), n, "events learned", [worker])
        (engine,) = _drained([worker], n)
        elapsed = engine["last_taken"] - engine["first_taken"]
        final = worker.model(name)["metrics"]
        return Drained(
            events_s=n / elapsed,
            accuracy=final["Accuracy"],
            peak_rss_mb=_rss_mb(worker.process.pid, "VmHWM"),
            predictions=_predictions_written(pipeline, n),
            metrics=final,
        )
    finally:
        pipeline.stop()


def _drained(workers: list[Worker], n: int) -> list[dict]:
    """The engine stats of ``workers`` once they have taken ``n`` events between them, read
    again half a second later: an engine counts each slice of a read as it takes it, but sets
    ``last_taken`` once the whole read is done, so the first stats showing ``n`` events can
    still hold the end of the read before (a few hundred ms early, with 5,000-record reads)."""

    def stats() -> list[dict | None]:
        return [w.stats().get("engine") for w in workers]

    def taken() -> int:
        return sum(e["events"] for e in stats() if e)

    def engines() -> list[dict] | None:
        got = stats()
        return got if all(got) and sum(e["events"] for e in got) >= n else None

    wait_count(taken, n, "events taken", workers)
    time.sleep(0.5)  # (no event is left to take: the engines are idle from here)
    return wait_for(engines, what="the engines' stats")


def _predictions_written(pipeline: Pipeline, n: int, stall: float = 30.0) -> int:
    """The prediction messages in ``pipeline``'s predictions topic, once there are ``n`` or
    their count has not grown for ``stall`` seconds (the engine counts an event before Kafka
    acknowledges its output: the last ones can still be on their way)."""
    got, moved = -1, time.monotonic()
    while True:
        written = run(count_messages(pipeline.bootstrap, pipeline.predictions))
        if written >= n:
            return written
        if written > got:
            got, moved = written, time.monotonic()
        elif time.monotonic() - moved > stall:
            return written
        time.sleep(0.2)


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
    """p50/p99 milliseconds from producing an event to reading its prediction, at ``rate``/s for
    ``seconds`` (as long as ``workload`` lasts at that rate: ``seconds`` of the result says)."""
    pipeline = _start("latency", model)
    try:
        started = pipeline.start_worker()
        # the engine has declared the predictions topic once it reads its partitions
        wait_for(
            lambda: (e := started.stats().get("engine")) and e["partitions"],
            timeout=STALL,
            what="the worker's engine to own its partition",
        )
        n = min(len(workload.rows), int(rate * seconds))
        rows, keys = workload.rows[:n], workload.keys[:n]
        lat = run(_paced(pipeline, rows, keys, rate))
        skip = int(rate)  # the first second warms up the model and the connections
        lat = sorted(lat[skip:] if len(lat) > 2 * skip else lat)
        return {
            "rate": rate,
            "events": len(lat),
            "seconds": round(n / rate, 2),
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        }
    finally:
        pipeline.stop()


def asking(
    workload: Workload,
    model: str,
    rate: float,
    seconds: float,
    asks: float,
    forwarded: bool,
    workers: int = 1,
) -> dict:
    """Scores on request while the stream is learned: ``asks`` requests a second, for
    ``seconds``, to one worker's ``POST /predict/`` from :mod:`bench.ask` (another process),
    while events are produced at ``rate``/s into the workers (:func:`_paced`).

    ``workers`` workers of as many partitions (two at least with ``forwarded``: then every
    request is for a key of a shard the asked worker does not hold, and is forwarded). Gives
    the client's summary (p50/p99 of answered requests, statuses), the events/s the workers
    took while it asked, and the events' own latency (produced to prediction read) over the
    whole run.
    """
    partitions = max(workers, 2) if forwarded else workers
    pipeline = Pipeline("asking", partitions=partitions, model=MODELS[model].text, **SETTINGS)
    topics = [pipeline.events, pipeline.labels]
    run(
        ensure_topics(
            pipeline.settings["BROKER"], topics, partitions, 1, options(pipeline.bootstrap)
        )
    )
    try:
        running = [pipeline.start_worker() for _ in range(partitions)]

        def owned() -> list[list[int]] | None:
            held = [(w.stats().get("engine") or {}).get("partitions") or [] for w in running]
            whole = sorted(p for h in held for p in h) == list(range(partitions))
            return held if whole and all(held) else None

        held = wait_for(owned, timeout=STALL, what="each worker's engine to own a partition")
        asked = running[0]
        mine = set(held[0])
        keys = [
            key
            for key in (f"k{i}" for i in range(1000))
            if (partition_of(key.encode(), partitions) in mine) != forwarded
        ]
        bodies = []
        for i, row in enumerate(workload.rows[:1000]):
            event = orjson.loads(row)
            bodies.append(
                orjson.dumps({"id": f"q{i}", "key": keys[i % len(keys)], "x": event["x"]})
            )
        path = ARTIFACTS / pipeline.id / "bodies.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(bodies) + b"\n")
        # the stream runs a second before the client asks and a second after it is done
        n = min(len(workload.rows), int(rate * (seconds + 2)))
        url = f"http://127.0.0.1:{asked.port}/predict/"
        return run(
            _asking(pipeline, running, workload, n, rate, partitions, url, path, asks, seconds)
        )
    finally:
        pipeline.stop()


async def _asking(
    pipeline: Pipeline,
    workers: list[Worker],
    workload: Workload,
    n: int,
    rate: float,
    partitions: int,
    url: str,
    bodies: Path,
    asks: float,
    seconds: float,
) -> dict:
    def taken() -> tuple[float, int]:
        return time.perf_counter(), sum(w.stats()["engine"]["events"] for w in workers)

    stream = asyncio.ensure_future(
        _paced(pipeline, workload.rows[:n], workload.keys[:n], rate, partitions=partitions)
    )
    try:
        await asyncio.sleep(1.0)  # (the stream's first second: models and connections warm)
        t0, before = await asyncio.to_thread(taken)
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.ask",
            url,
            str(bodies),
            "--rate",
            str(asks),
            "--seconds",
            str(seconds),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await client.communicate()
        t1, after = await asyncio.to_thread(taken)
        if client.returncode != 0:
            raise RuntimeError(f"bench.ask exited with {client.returncode}")
        latencies = sorted(await stream)
    finally:
        stream.cancel()
    answered = orjson.loads(out)
    return {
        **answered,
        "asks": asks,
        "stream_rate": rate,
        "learned_events_s": round((after - before) / (t1 - t0)),
        "event_p50_ms": round(statistics.median(latencies) * 1000, 3),
        "event_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
    }


async def send_rows(
    producer: AIOKafkaProducer, topic: str, partition: int, keys: list, values: list
) -> list[asyncio.Future]:
    """Hand ``values`` (with ``keys``) to ``producer`` for ``partition`` of ``topic`` as record
    batches, every row once and in order; the delivery futures of the batches.

    aiokafka's ``BatchBuilder.append`` returns None, and closes the batch, when the row does
    not fit (a batch holds ``max_batch_size`` bytes; an empty one takes any row): that batch is
    sent and the row goes into a new one.
    """
    delivered = []
    batch = producer.create_batch()
    for key, value in zip(keys, values, strict=True):
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            delivered.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a row of {len(value)} bytes does not fit in an empty batch")
    if batch.record_count():
        delivered.append(await producer.send_batch(batch, topic, partition=partition))
    return delivered


async def wait_task(
    task: asyncio.Future, count: Callable[[], int], total: int, what: str, stall: float
) -> None:
    """Wait for ``task`` (which ends once ``count()`` reaches ``total``); TimeoutError saying
    how far it got once ``count()`` has not grown for ``stall`` seconds (``task`` cancelled)."""
    got, moved = count(), time.monotonic()
    while not task.done():
        await asyncio.wait([task], timeout=min(1.0, stall / 4))
        if count() > got:
            got, moved = count(), time.monotonic()
        elif not task.done() and time.monotonic() - moved > stall:
            task.cancel()
            raise TimeoutError(f"got {got:,} of {total:,} {what}, none more for {stall:g} s")
    task.result()  # (what it raised)


async def _paced(
    pipeline: Pipeline,
    rows: list,
    keys: list,
    rate: float,
    stall: float = STALL,
    partitions: int = 1,
) -> list[float]:
    """Send ``rows`` at ``rate``/s, a record batch every 5 ms, and time each prediction;
    each row to the partition of its Kafka key among ``partitions`` (Kafka's default
    partitioner, as a producer of a team's would place it).

    The driver shares the 2 cores with the worker and the broker: it hands each tick's events
    to the producer as one record batch (:data:`TICK_BATCH_BYTES`; more batches if a tick
    does not fit, never a row left out) and reads predictions as aiokafka's own records, so
    that its own cost per event stays small beside what it measures. Every batch must be
    acknowledged, and every row's prediction read: it fails saying how many were not, once
    none has come for ``stall`` seconds.
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
        bootstrap_servers=pipeline.bootstrap,
        acks="all",
        linger_ms=0,
        max_batch_size=TICK_BATCH_BYTES,
        **security,
    )
    await consumer.start()
    await producer.start()
    reader = None
    try:
        # (the worker makes its predictions topic with as many partitions as its events')
        consumer.assign([TopicPartition(pipeline.predictions, p) for p in range(partitions)])
        await consumer.seek_to_end()

        async def read() -> None:
            while len(latencies) < len(rows):
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        # (each event once: a prediction written again is not a second one)
                        t = sent.pop(record.key, None)
                        if t is not None:
                            latencies.append(now - t)

        reader = asyncio.ensure_future(read())
        ids = [orjson.loads(row)["id"].encode() for row in rows]
        placed = [partition_of(key, partitions) for key in keys]
        tick = 0.005
        per_tick = max(1, round(rate * tick))
        delivered: list[asyncio.Future] = []
        start = time.perf_counter()
        for i in range(0, len(rows), per_tick):
            due = start + (i / rate)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if reader.done():
                break  # (it failed: said below)
            end = min(i + per_tick, len(rows))
            now = time.perf_counter()
            for j in range(i, end):
                sent[ids[j]] = now
            for partition in range(partitions):
                tick_rows = [j for j in range(i, end) if placed[j] == partition]
                if tick_rows:
                    delivered += await send_rows(
                        producer,
                        pipeline.events,
                        partition,
                        [keys[j] for j in tick_rows],
                        [rows[j] for j in tick_rows],
                    )
        await asyncio.gather(*delivered)  # every batch acknowledged (or what Kafka said)
        try:
            await wait_task(reader, lambda: len(latencies), len(rows), "predictions", stall)
        except TimeoutError as exc:
            missing = [i.decode() for i in ids if i in sent]
            raise TimeoutError(f"{exc}; no prediction of ids {', '.join(missing[:5])}") from None
    finally:
        if reader is not None:
            reader.cancel()
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
            wait_count(partial(_learned, worker, name), mark, "events learned", [worker])
            out[mark] = _rss_mb(worker.process.pid)
        return out
    finally:
        pipeline.stop()
