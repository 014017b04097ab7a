"""Recovery times, medians of several runs (needs the project's Kafka; see README).

python bench/recovery.py worker [--runs 3]    SIGKILL a learning worker, start it again:
                                              seconds from the kill to learning again
python bench/recovery.py broker [--runs 3]    SIGKILL the leader of a 3-broker cluster
                                              while producing: longest stall between acks
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
from river import datasets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.commands.datasets import encode_x  # noqa: E402
from bench.worker import STALL, wait_count  # noqa: E402
from tests.integration.harness import Pipeline, wait_for  # noqa: E402
from tests.integration.test_faults import LR  # noqa: E402


def hyperplane_stream(seed: int = 7) -> Iterator[dict]:
    """tests/integration/test_faults.py's hyperplane events, as many as are taken."""
    for i, (x, y) in enumerate(datasets.synth.Hyperplane(seed=seed, n_features=10)):
        yield {"id": f"h{i}", "key": None, "ts": float(i), "x": encode_x(x), "y": y}


class Stream(threading.Thread):
    """Events sent to ``pipeline``'s events topic at about ``rate``/s, a chunk every 0.1 s,
    until :meth:`stop`: a stream that lasts however long the worker takes to come back (a
    fixed number of events at a fixed rate ends before a slow machine's restart does, and the
    worker then comes back to a backlog, not a stream)."""

    def __init__(self, pipeline: Pipeline, rate: float) -> None:
        super().__init__(daemon=True)
        self.pipeline = pipeline
        self.chunk = max(1, int(rate / 10))
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        events = hyperplane_stream()
        try:
            while not self.stopping.is_set():
                rows = list(itertools.islice(events, self.chunk))
                values = [orjson.dumps(r) for r in rows]
                self.pipeline.send(self.pipeline.events, values, [r["id"].encode() for r in rows])
                self.sent += len(rows)
                self.stopping.wait(0.1)
        except BaseException as exc:  # noqa: BLE001 - raised by stop()
            self.error = exc

    def stop(self) -> int:
        """Stop sending; the events sent (raises what the sending raised)."""
        self.stopping.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"sending failed after {self.sent:,} events") from self.error
        return self.sent


def worker_recovery() -> float:
    pipeline = Pipeline("recovery", partitions=1, model=LR.text)
    stream = None
    try:
        worker = pipeline.start_worker()
        # a stream, not a backlog: events keep arriving while the worker is down
        stream = Stream(pipeline, 1000)
        stream.start()

        def learned() -> int:
            return (e := worker.model(LR.name)) and e["n_learned"]

        wait_count(learned, 3000, "events learned", [worker])
        worker.stop(signal.SIGKILL)
        killed = time.monotonic()
        worker.start()
        restored = wait_for(learned, timeout=STALL, what="the restarted worker's model")
        wait_count(learned, restored + 1, "events learned after the restart", [worker])
        elapsed = time.monotonic() - killed
        sent = stream.stop()
        stream = None
        print(f"  ({sent:,} events sent, {restored:,} learned when it came back)", flush=True)
        return elapsed
    finally:
        if stream is not None:
            stream.stopping.set()
        pipeline.stop()


def kafka(*args: str) -> None:
    env = {**os.environ, "KAFKA_PORT": "29092", "KAFKA_RUN": str(ROOT / ".cache/kafka/run-3")}
    subprocess.run(
        [str(ROOT / "scripts/kafka.sh"), *args], env=env, check=True, capture_output=True
    )


async def produce_through_kill(bootstrap: str) -> float:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"recovery-{time.time_ns()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 3, topic_configs={"min.insync.replicas": "2"})])
    for _ in range(100):  # the new topic's metadata takes a moment to show its leader
        meta = await admin.describe_topics([topic])
        if meta and meta[0]["partitions"]:
            break
        await asyncio.sleep(0.1)
    leader = meta[0]["partitions"][0]["leader"]
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    acks: list[float] = []
    try:
        start = time.monotonic()
        killed = False
        while time.monotonic() - start < 25:
            await producer.send_and_wait(topic, b"x")
            acks.append(time.monotonic())
            if not killed and time.monotonic() - start > 5:
                kafka("kill", str(leader))
                killed = True
            await asyncio.sleep(0.005)
    finally:
        await producer.stop()
        kafka("start", str(leader))
        time.sleep(5)
    return max(b - a for a, b in zip(acks, acks[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["worker", "broker"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = []
    if args.what == "broker":
        kafka("up", "3")
    try:
        for run in range(args.runs):
            if args.what == "worker":
                t = worker_recovery()
            else:
                t = asyncio.run(
                    produce_through_kill("127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094")
                )
            times.append(t)
            print(f"run {run + 1}: {t:.2f} s", flush=True)
    finally:
        if args.what == "broker":
            kafka("down")
    print(
        f"{args.what}: median {statistics.median(times):.2f} s over {len(times)} runs: "
        + ", ".join(f"{t:.2f}" for t in times)
    )


if __name__ == "__main__":
    main()
