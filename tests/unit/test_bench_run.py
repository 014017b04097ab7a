"""The benchmark's table logic: interleaving with the limit, ratios, checks (no broker)."""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import pytest

from bench.run import (
    IN_MEMORY,
    LIMIT,
    check_of,
    format_table,
    interleaved,
    ratio_around,
    table_rows,
)


def test_each_system_runs_between_two_limit_runs_each_followed_by_the_in_memory_loop() -> None:
    calls: list[str] = []
    limit_rates = iter([100.0, 200.0, 100.0, 300.0, 100.0])
    memory_rates = iter([400.0, 400.0, 400.0, 400.0, 400.0])

    def limit() -> tuple[float, bool]:
        calls.append("limit")
        return next(limit_rates), True

    def in_memory() -> tuple[float, bool]:
        calls.append("memory")
        return next(memory_rates), True

    def system(name: str, rate: float):
        def run_once() -> tuple[float, bool]:
            calls.append(name)
            return rate, True

        return run_once

    rows = interleaved("lr", {"a": system("a", 75.0), "b": system("b", 50.0)}, 2, limit, in_memory)

    assert calls == ["limit", "memory", "a", "limit", "memory", "b"] * 2 + ["limit", "memory"]
    by_name = {row[0]: row for row in rows}
    assert [row[0] for row in rows] == [f"{LIMIT} [lr]", f"{IN_MEMORY} [lr]", "a [lr]", "b [lr]"]
    # a ran between 100 and 200, then between 100 and 300: 75/150 and 75/200
    assert by_name["a [lr]"][1] == 75.0
    assert by_name["a [lr]"][2] == pytest.approx((0.5 + 0.375) / 2)
    assert by_name["a [lr]"][3] == pytest.approx(75 / 400)
    # b between 200 and 100, then 300 and 100
    assert by_name["b [lr]"][2] == pytest.approx((50 / 150 + 50 / 200) / 2)
    limit_row, memory_row = rows[0], rows[1]
    assert limit_row[1:3] == (100.0, 1.0) and limit_row[4] == "ok"
    assert limit_row[3] == pytest.approx(100 / 400)  # the median point: limit 100, loop 400
    assert memory_row[1] == 400.0 and memory_row[3] == 1.0
    assert memory_row[2] == pytest.approx(4.0)


def test_a_failing_run_is_reported_and_the_others_still_run() -> None:
    def broken() -> tuple[float, bool]:
        raise RuntimeError("worker exited with 1")

    rows = interleaved(
        "lr",
        {"broken": broken, "fine": lambda: (10.0, True)},
        1,
        lambda: (20.0, True),
        lambda: (40.0, True),
    )

    by_name = {row[0]: row for row in rows}
    assert by_name["broken [lr]"][1:] == (0.0, None, None, "FAILED")
    assert by_name["fine [lr]"][1:] == (10.0, 0.5, 0.25, "ok")


def test_a_failed_limit_run_leaves_the_ratio_to_the_other_neighbour() -> None:
    order = [("a", (50.0, True))]
    rows, each = table_rows("lr", order, [None, (100.0, True)], [(1.0, True)] * 2, ["a"])

    assert each == {"a": [0.5]}
    assert rows[0][4] == "FAILED"  # the limit's own row says so


def test_a_run_with_the_wrong_metric_or_output_makes_the_row_invalid() -> None:
    order = [("a", (50.0, True)), ("a", (70.0, False))]
    limits = [(100.0, True)] * 3

    rows, _ = table_rows("lr", order, limits, limits, ["a"])

    assert rows[2] == ("a [lr]", 60.0, 0.6, 0.6, "INVALID")


def test_checks_and_ratios() -> None:
    assert check_of([]) == "ok"
    assert check_of([None, (1.0, False)]) == "FAILED"
    assert ratio_around(10.0, None, None) is None
    assert ratio_around(10.0, (0.0, True), (20.0, True)) == 0.5


def test_the_table_prints_every_row_with_both_ratios() -> None:
    text = format_table(
        [(f"{LIMIT} [lr]", 15000.0, 1.0, 0.6, "ok"), ("streamlearn [lr]", 9000.4, 0.6, None, "ok")]
    )

    lines = text.splitlines()
    assert lines[0].split() == ["system", "events/s", "ratio", "in-memory", "check"]
    assert lines[1].endswith("15,000  1.000      0.600  ok")
    assert lines[2].endswith("9,000  0.600          -  ok")


def test_the_bench_modules_doctests() -> None:
    # (bench/ is not among pytest's doctest paths)
    import bench.ask
    import bench.run
    import bench.worker

    for module in (bench.ask, bench.run, bench.worker):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0


def test_each_latency_run_sends_its_seconds_of_rows_however_fast_the_machine(monkeypatch) -> None:
    # (bench/worker.py's latency sends min(len(rows), rate * seconds) rows: a faster machine's
    # rate needs more rows than the table's workload holds, the same rows first)
    import bench.run as bench_run
    from bench.workloads import make

    sent: list[tuple[int, int]] = []

    def latency(workload, model: str, rate: float, seconds: float) -> dict:
        assert workload.rows[:500] == plain.rows
        sent.append((len(workload.rows), rate))
        n = min(len(workload.rows), int(rate * seconds))
        return {"rate": rate, "events": n, "seconds": n / rate, "p50_ms": 1.0, "p99_ms": 2.0}

    drains = iter([SimpleNamespace(events_s=400.0), SimpleNamespace(events_s=4000.0)])
    monkeypatch.setattr(bench_run.worker, "latency", latency)
    monkeypatch.setattr(bench_run.worker, "drain", lambda workload, model: next(drains))
    plain = make(500)

    result = bench_run.latency(plain, seconds=2, reps=2)

    assert sent == [(500, 200), (4000, 2000)]  # 2 s at 200/s: the 500 rows; at 2,000/s: 4,000
    assert [r["seconds"] for r in result["runs"]] == [2.0, 2.0]


def test_each_scoring_run_asks_at_half_the_drain_before_it_with_rows_enough(monkeypatch) -> None:
    import bench.run as bench_run
    from bench.workloads import make

    asked: list[tuple[int, int, bool]] = []

    def asking(workload, model, rate, seconds, asks, forwarded) -> dict:
        assert workload.rows[:500] == plain.rows and asks == bench_run.ASKS
        asked.append((len(workload.rows), rate, forwarded))
        p99 = 20.0 if forwarded else 5.0
        return {
            "statuses": {"200": 10, "503": 1},
            "stream_rate": rate,
            "learned_events_s": rate - 1,
            "p50_ms": 1.0,
            "p99_ms": p99 + len(asked),
        }

    drains = iter(SimpleNamespace(events_s=r) for r in (400.0, 4000.0, 600.0, 800.0))
    monkeypatch.setattr(bench_run.worker, "asking", asking)
    monkeypatch.setattr(bench_run.worker, "drain", lambda workload, model: next(drains))
    plain = make(500)

    result = bench_run.scoring(plain, seconds=2, reps=2)

    # (2 s of asking and 2 more of stream: 800 rows at 200/s, 8,000 at 2,000/s; the 500 first)
    assert asked == [(800, 200, False), (8000, 2000, False), (8000, 300, True), (8000, 400, True)]
    here, there = result["this worker"], result["forwarded to another worker"]
    assert (here["p99_ms"], there["p99_ms"], there["rate"]) == (6.5, 23.5, 350)
    assert here["statuses"] == {"200": 20, "503": 2} and len(there["runs"]) == 2
