"""streamlearn's side of the benchmark: one real worker process per run, on its own app id.

* :func:`drain`: the backlog is in Kafka before the worker starts; events/s is counted by the
  worker's engine from the moment it took its first event to the end of its last batch (the
  same span the peers time), and its final Accuracy is read from ``GET /models/``.
* :func:`latency`: events are produced at a fixed rate into a running worker; latency is the
  time from handing an event to the producer to reading its prediction from Kafka.
* :func:`memory`: resident memory of the worker as it sees more and more distinct keys.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app import raw_fetch
from bench.workloads import MODELS, WINDOW_FEATURES, Workload
from tests.integration.harness import Pipeline, ensure_topics, run, wait_for

#: The worker's settings in every run: streamlearn's defaults, but windows on feature "0" only.
SETTINGS = {"checkpoint_seconds": 2.0, "window_features": ",".join(WINDOW_FEATURES)}


@dataclass
class Drained:
    events_s: float
    accuracy: float
    peak_rss_mb: float


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _start(name: str, model: str) -> Pipeline:
    pipeline = Pipeline(name, partitions=1, model=MODELS[model].text, **SETTINGS)
    run(ensure_topics(pipeline.settings["BROKER"], [pipeline.events, pipeline.labels], 1, 1))
    return pipeline


def drain(workload: Workload, model: str) -> Drained:
    """One worker draining ``workload`` from a backlog: events/s, Accuracy, peak RSS."""
    pipeline = _start("bench", model)
    try:
        pipeline.send(pipeline.events, workload.rows, workload.keys)
        worker = pipeline.start_worker()
        n = len(workload.rows)
        name = MODELS[model].name
        wait_for(
            lambda: (e := worker.model(name)) and e["n_learned"] == n,
            timeout=3600,
            what=f"{n} learned",
        )
        engine = wait_for(lambda: (s := worker.stats().get("engine")) and s["events"] == n and s)
        elapsed = engine["last_taken"] - engine["first_taken"]
        return Drained(
            events_s=n / elapsed,
            accuracy=worker.model(name)["metrics"]["Accuracy"],
            peak_rss_mb=_rss_mb(worker.process.pid, "VmHWM"),
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
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.bootstrap, group_id=None, key_deserializer=raw_fetch.RAW
    )
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=0)
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
        pipeline.send(pipeline.events, workload.rows, workload.keys)
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
