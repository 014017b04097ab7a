"""Run the peers (bench/peers/*.py) and the limit, each in a fresh process, on a topic filled once
per workload, and check what each wrote.

The peers' frameworks (Quix Streams, Bytewax, confluent-kafka) are installed by
``bench/peers/setup.sh`` into ``bench/.venv-peers``, so streamlearn's runtime never depends on
them; the limit (``bench/peers/limit_aiokafka.py``: aiokafka, River, orjson) runs with
streamlearn's own Python, so that it runs without them. Each run is a fresh process and consumer
group reading the same backlog, and writes one prediction per event to a predictions topic of
its own, created for the run, counted after it (one message per event, or the run is invalid)
and deleted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka.admin import ensure_topics
from bench.workloads import Workload
from tests.integration.harness import BOOTSTRAP, options, run

BENCH = Path(__file__).resolve().parent
PYTHON = BENCH / ".venv-peers" / "bin" / "python"

#: the peers, in the order the table shows them
SYSTEMS = ["confluent", "aiokafka", "bytewax", "quix", "quix-eos"]
#: the limit: the ratio column's denominator (not a peer: it runs without the peers' venv)
LIMIT = "limit"
LABELS = {
    LIMIT: "aiokafka getmany(5000), record batches out: bare client (the limit)",
    "confluent": "confluent-kafka consume(5000) + produce(), bare loop",
    "aiokafka": "aiokafka getmany(5000) + send(), bare loop",
    "bytewax": "Bytewax, KafkaSource -> map -> KafkaSink",
    "quix": "Quix Streams, at-least-once",
    "quix-eos": "Quix Streams, exactly-once",
}
COMMANDS = {
    LIMIT: ["limit_aiokafka.py"],
    "confluent": ["plain_confluent.py"],
    "aiokafka": ["plain_aiokafka.py"],
    "bytewax": ["bytewax_flow.py"],
    "quix": ["quix.py", "--guarantee", "at-least-once"],
    "quix-eos": ["quix.py", "--guarantee", "exactly-once"],
}
#: the systems whose predictions are written in transactions (counted as a read_committed
#: consumer sees them: the end offset also counts the transactions' commit markers)
TRANSACTIONAL = {"quix-eos"}
#: a peer's run is stopped after this many seconds plus one per this many events: as long as the
#: work (the slowest peer run here takes about 4,300 events/s, 43 times that floor; a peer
#: also gives up by itself after 30 s without a new event)
PEER_SECONDS, PEER_EVENTS_PER_SECOND = 600, 100


def available() -> bool:
    """Whether the peers' environment exists (``bench/peers/setup.sh`` creates it)."""
    if not PYTHON.exists():
        subprocess.run(["bash", str(BENCH / "peers" / "setup.sh")], check=False)
    return PYTHON.exists()


def fill(workload: Workload) -> str:
    """A new one-partition topic holding ``workload``'s rows; its name."""
    topic = f"bench-peers-{uuid.uuid4().hex[:8]}"
    run(ensure_topics(f"kafka://{BOOTSTRAP}", [topic], 1, 1, options(BOOTSTRAP)))
    run(produce_parts(BOOTSTRAP, topic, [workload]))
    return topic


async def produce_parts(bootstrap: str, topic: str, parts: list[Workload]) -> None:
    """Send ``parts[p]`` to partition ``p`` of ``topic`` in record batches, the partitions in
    turn (a backlog that lands several times faster than workers drain it: 100k rows in well
    under a second)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=0,
        max_batch_size=512 * 1024,
        **options(bootstrap),
    )
    await producer.start()
    try:
        await producer.partitions_for(topic)
        batches: list[list] = []
        for part in parts:
            batches.append([producer.create_batch()])
            for key, value in zip(part.keys, part.rows, strict=True):
                if batches[-1][-1].append(timestamp=None, key=key, value=value) is None:  # full
                    batches[-1].append(producer.create_batch())
                    batches[-1][-1].append(timestamp=None, key=key, value=value)
        sent = []
        for k in range(max(len(b) for b in batches)):
            for p, of_part in enumerate(batches):
                if k < len(of_part) and of_part[k].record_count():
                    sent.append(await producer.send_batch(of_part[k], topic, partition=p))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def run_peer(system: str, topic: str, events: int, model: str) -> dict:
    """One run of one peer (or of the limit) writing to a predictions topic of its own: its
    result line (``events_s``, ``accuracy``, ...) and ``predictions``, the messages it wrote."""
    script, *extra = COMMANDS[system]
    output = f"bench-predictions-{system}-{uuid.uuid4().hex[:8]}"
    run(ensure_topics(f"kafka://{BOOTSTRAP}", [output], 1, 1, options(BOOTSTRAP)))
    python = sys.executable if system == LIMIT else str(PYTHON)
    command = [
        python,
        str(BENCH / "peers" / script),
        *extra,
        "--broker",
        BOOTSTRAP,
        "--topic",
        topic,
        "--output",
        output,
        "--events",
        str(events),
        "--model",
        model,
    ]
    timeout = PEER_SECONDS + events / PEER_EVENTS_PER_SECOND
    try:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise RuntimeError(
                f"{system} did not finish {events:,} events in {timeout:,.0f} s: {stderr[-2000:]}"
            ) from None
        if done.returncode != 0:
            raise RuntimeError(f"{system} failed ({done.returncode}): {done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["predictions"] = run(count_messages(BOOTSTRAP, output, system in TRANSACTIONAL))
    finally:
        delete_topics([output])
    return result


async def count_messages(bootstrap: str, topic: str, committed: bool = False) -> int:
    """How many messages ``topic`` holds (all partitions).

    Without transactions every message takes one offset: the end offsets minus the beginning
    ones, read from the broker without fetching a record. With transactions (``committed``) the
    commit markers take offsets too, so the messages are read and counted as a read_committed
    consumer sees them (aborted ones left out).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **options(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # a topic of a moment ago
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return 0
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        if not committed:
            return sum(ends[tp] - starts[tp] for tp in tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        # (as long as the reading moves on: it stops after 60 s without a position further)
        moved, last = time.monotonic(), None
        while time.monotonic() - moved < 60:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            if positions != last:
                moved, last = time.monotonic(), positions
            batch = await consumer.getmany(timeout_ms=500, max_records=100_000)
            count += sum(len(records) for records in batch.values())
        return count
    finally:
        await consumer.stop()


def delete_topics(names: list[str]) -> None:
    """Delete ``names`` (a run's predictions: 20 MB each at 100k events); errors are ignored."""

    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, **options(BOOTSTRAP))
        await admin.start()
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()

    try:
        run(delete())
    except Exception as exc:  # noqa: BLE001 - a topic left behind costs disk, not the result
        print(f"  (could not delete {names}: {exc!r})", flush=True)


def chart(results: Path, out: Path) -> None:
    """Draw the table as a PNG with the peers' matplotlib (skipped without it)."""
    if PYTHON.exists():
        subprocess.run([str(PYTHON), str(BENCH / "chart.py"), str(results), str(out)], check=False)
