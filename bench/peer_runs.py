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
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
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
#: a peer's run is stopped once the predictions it wrote have not grown for this many seconds
#: (as bench/worker.py's STALL: a start-up, a rebalance or a flush pauses a peer for far less,
#: here and on a machine several times slower); a run lasts as long as the work, however fast
#: the machine. (A peer reading from Kafka also gives up by itself after 30 s without a new
#: event; Bytewax ends at the end of the topic.)
STALL = 120.0
#: how often a running peer's predictions are counted (one ListOffsets request each)
POLL = 1.0


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
    try:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
            try:
                run(wait_process(process, BOOTSTRAP, output, events))
            except BaseException as exc:
                process.kill()
                process.wait()
                err.seek(0)
                if isinstance(exc, TimeoutError):
                    raise RuntimeError(f"{system}: {exc}: {err.read()[-2000:]}") from None
                raise
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if process.returncode != 0:
            raise RuntimeError(f"{system} failed ({process.returncode}): {stderr[-2000:]}")
        result = json.loads(stdout.strip().splitlines()[-1])
        result["predictions"] = run(count_messages(BOOTSTRAP, output, system in TRANSACTIONAL))
    finally:
        delete_topics([output])
    return result


async def wait_process(
    process: subprocess.Popen, bootstrap: str, topic: str, events: int, stall: float = STALL
) -> None:
    """Wait until ``process`` exits, as long as it makes progress: TimeoutError (saying how many
    of ``events`` predictions ``topic`` holds) once they have not grown for ``stall`` seconds.
    One consumer counts them every :data:`POLL` seconds by the end offsets alone (a
    transaction's records count before its commit: progress all the same)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **options(bootstrap), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await wait_progress(
            process.poll, partial(_written, consumer, topic), events, "predictions", stall
        )
    finally:
        await consumer.stop()


async def _written(consumer: AIOKafkaConsumer, topic: str) -> int:
    """Messages in ``topic`` by its end offsets (it was created empty for the run)."""
    if not consumer.partitions_for_topic(topic):
        await consumer._client.force_metadata_update()  # (a topic of a moment ago)
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    return sum((await consumer.end_offsets(tps)).values()) if tps else 0


async def wait_progress(
    exited: Callable[[], int | None],
    count: Callable[[], Awaitable[int]],
    target: int,
    what: str,
    stall: float = STALL,
    poll: float = POLL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Return once ``exited()`` is not None (a process's ``poll``); TimeoutError once
    ``count()`` has not grown for ``stall`` seconds before that (an error of ``count()`` is no
    progress). There is no other limit: a slower machine's run takes longer, a stuck one
    fails within ``stall`` of its last progress."""
    got, moved = -1, clock()
    while exited() is None:
        try:
            now = await count()
        except Exception:  # noqa: BLE001 - no progress
            now = got
        if now > got:
            got, moved = now, clock()
        elif clock() - moved > stall:
            raise TimeoutError(
                f"got {max(got, 0):,} of {target:,} {what}, none more for {stall:g} s"
            )
        await sleep(poll)


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
