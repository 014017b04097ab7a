"""The benchmark's scale-out logic: routing rows to partitions, ownership, the whole drain."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner

from bench.worker import owns_all, partition_of, split, whole_drain
from bench.workloads import Workload


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
