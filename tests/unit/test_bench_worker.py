"""The benchmark's worker-side logic without a broker: routing rows to partitions, ownership, the
whole drain; the latency driver's record batches (every row sent once, in order, however many a
5 ms tick holds) and its waits (they fail saying how far they got)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from bench import worker
from bench.worker import owns_all, partition_of, split, whole_drain
from bench.workloads import Workload, make


def _plain(n: int) -> Workload:
    rows = [orjson.dumps({"id": f"b{i}", "key": None, "ts": float(i)}) for i in range(n)]
    return Workload("plain", rows, [f"b{i}".encode() for i in range(n)], False)


def test_rows_go_where_kafkas_default_partitioner_puts_their_keys() -> None:
    partitioner = DefaultPartitioner()
    for i in range(200):
        key = f"b{i}".encode()
        assert partition_of(key, 2) == partitioner(key, [0, 1], [0, 1])
        assert partition_of(key, 3) == partitioner(key, [0, 1, 2], [0, 1, 2])


def test_split_keeps_each_partitions_rows_in_order_and_loses_none() -> None:
    workload = _plain(1000)

    parts = split(workload, 2)

    assert sorted(r for part in parts for r in part.rows) == sorted(workload.rows)
    for p, part in enumerate(parts):
        assert len(part.rows) > 400  # the ids spread over both partitions
        assert all(partition_of(key, 2) == p for key in part.keys)
        indexes = [workload.rows.index(row) for row in part.rows]
        assert indexes == sorted(indexes)
        assert [workload.keys[i] for i in indexes] == part.keys


def test_workers_own_all_partitions_only_once_the_split_has_settled() -> None:
    assert owns_all([{"partitions": [0, 1]}], 2)
    assert not owns_all([{"partitions": [0]}], 2)
    assert not owns_all([None, {"partitions": [0, 1]}], 2)  # one not serving stats yet
    assert not owns_all([{"partitions": [0, 1]}, {"partitions": []}], 2)  # before the rebalance
    assert not owns_all([{"partitions": [0, 1]}, {"partitions": [1]}], 2)  # during it
    assert owns_all([{"partitions": [1]}, {"partitions": [0]}], 2)


def test_the_whole_drain_runs_from_the_first_event_taken_to_the_last_batch() -> None:
    engines = [
        {"events": 0, "first_taken": None, "last_taken": None},  # a worker that took nothing
        {"events": 700, "first_taken": 100.5, "last_taken": 103.0},
        {"events": 300, "first_taken": 100.0, "last_taken": 102.0},
    ]

    assert whole_drain(engines) == (1000, 3.0)


# The latency driver (bench.worker._paced) against a fake Kafka


def _records(batch: BatchBuilder) -> list:
    return list(DefaultRecordBatch(bytes(batch._build())))


class FakeKafka:
    """A producer and a consumer on a fake pair of topics: each row Kafka gets in a record batch
    is predicted at once (its id read back as a prediction's key, as a worker writes it), but
    for the ids in ``lose``. The producer's batches hold ``batch_bytes`` if given, else what the
    driver asks for (``max_batch_size``, aiokafka's default 16 KB: about 56 of the bench's
    rows)."""

    def __init__(self, batch_bytes: int | None = None, lose: frozenset = frozenset()) -> None:
        self.lose = lose
        self.sent: list[bytes] = []  # the Kafka keys of the rows sent, as Kafka got them
        self.batches: list[int] = []  # rows per batch sent
        self.predicted: list[bytes] = []  # ids not read back yet
        kafka = self

        class Producer:
            def __init__(self, **config) -> None:
                self.size = batch_bytes or config.get("max_batch_size", 16384)

            async def start(self) -> None:
                pass

            async def stop(self) -> None:
                pass

            def create_batch(self) -> BatchBuilder:
                return BatchBuilder(self.size, 0)

            async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
                records = _records(batch)
                kafka.sent += [r.key for r in records]
                kafka.batches.append(len(records))
                kafka.predicted += [orjson.loads(r.value)["id"].encode() for r in records]
                delivered = asyncio.get_running_loop().create_future()
                delivered.set_result(None)
                return delivered

        class Consumer:
            def __init__(self, **config) -> None:
                pass

            async def start(self) -> None:
                pass

            async def stop(self) -> None:
                pass

            def partitions_for_topic(self, topic: str) -> set[int]:
                return {0}

            def assign(self, partitions: list) -> None:
                pass

            async def seek_to_end(self) -> None:
                pass

            async def getmany(self, timeout_ms: int = 0) -> dict:
                await asyncio.sleep(0.001)
                ready = [SimpleNamespace(key=k) for k in kafka.predicted if k not in kafka.lose]
                kafka.predicted = []
                return {TopicPartition("fake-predictions", 0): ready} if ready else {}

        self.producer = Producer
        self.consumer = Consumer


@pytest.fixture
def fake_kafka(monkeypatch):
    def install(batch_bytes: int | None = None, lose: frozenset = frozenset()) -> FakeKafka:
        kafka = FakeKafka(batch_bytes, lose)
        monkeypatch.setattr(worker, "AIOKafkaProducer", kafka.producer)
        monkeypatch.setattr(worker, "AIOKafkaConsumer", kafka.consumer)
        return kafka

    return install


PIPELINE = SimpleNamespace(bootstrap="fake:9092", events="fake-events", predictions="fake-p")


async def test_the_latency_driver_sends_every_row_once_in_order_when_batches_fill(
    fake_kafka,
) -> None:
    # 20,000 events/s: 100 rows a 5 ms tick, where a record batch holds 2. A full batch's
    # append returns None (and closes it): the row must go into the next batch, not be dropped.
    kafka = fake_kafka(batch_bytes=700)
    rows = make(450)

    latencies = await asyncio.wait_for(
        worker._paced(PIPELINE, rows.rows, rows.keys, rate=20_000), timeout=30
    )

    assert kafka.sent == rows.keys  # every row once, in order
    assert max(kafka.batches) == 2
    assert len(latencies) == 450
    assert all(t >= 0 for t in latencies)


async def test_at_a_fast_machines_rate_each_tick_goes_out_whole(fake_kafka) -> None:
    # The machine of the issue: River's loop at 70k events/s, the latency run at 22,000/s, 110
    # rows a tick: more than aiokafka's default 16 KB batch holds (56). The driver's batches
    # hold a tick, so that a tick is one batch, as on a slower machine.
    kafka = fake_kafka()  # (the batch size the driver asks for)
    rows = make(1100)

    await asyncio.wait_for(worker._paced(PIPELINE, rows.rows, rows.keys, rate=22_000), timeout=30)

    assert kafka.sent == rows.keys
    assert kafka.batches == [110] * 10


async def test_missing_predictions_are_counted_not_a_bare_timeout(fake_kafka) -> None:
    rows = make(200)
    fake_kafka(lose=frozenset({b"b7", b"b150"}))

    with pytest.raises(TimeoutError, match=r"got 198 of 200 predictions.*b7, b150"):
        await asyncio.wait_for(
            worker._paced(PIPELINE, rows.rows, rows.keys, rate=10_000, stall=0.5), timeout=30
        )


def test_a_wait_fails_once_its_count_stands_still_saying_how_far_it_got() -> None:
    counts = iter([0, 5, 9, 9])

    with pytest.raises(TimeoutError, match=r"got 9 of 20,000 events learned, none more for 0.3 s"):
        worker.wait_count(lambda: next(counts, 9), 20_000, "events learned", stall=0.3, poll=0.01)


def test_a_wait_lasts_as_long_as_its_count_grows() -> None:
    # (a slow machine: far longer in all than the stall, one event more at each poll)
    counts = iter(range(41))

    assert worker.wait_count(lambda: next(counts), 40, "events", stall=0.5, poll=0.02) == 40


def test_a_wait_fails_at_once_when_the_worker_exits() -> None:
    exited = SimpleNamespace(
        process=SimpleNamespace(poll=lambda: 1, returncode=1), log_path="worker-0.log"
    )

    with pytest.raises(RuntimeError, match=r"got 0 of 10 events taken: a worker exited with 1"):
        worker.wait_count(lambda: 0, 10, "events taken", [exited], stall=60)
