"""The head-to-head part of the benchmark: pairing, alternation and the sign test."""

from __future__ import annotations

import pytest

from bench.duel import duel, sign_test


@pytest.mark.parametrize(
    ("wins", "pairs", "p"),
    [(10, 10, 2 / 1024), (0, 10, 2 / 1024), (5, 10, 1.0), (8, 10, 2 * 56 / 1024), (0, 0, 1.0)],
)
def test_sign_test_is_the_two_sided_binomial_tail(wins: int, pairs: int, p: float) -> None:
    assert sign_test(wins, pairs) == pytest.approx(p)


def test_duel_alternates_who_runs_first_and_pairs_each_run_with_its_neighbour() -> None:
    calls: list[str] = []
    ours_rates = iter([110.0, 90.0, 120.0, 100.0])
    theirs_rates = iter([100.0, 100.0, 100.0, 100.0])

    def ours() -> tuple[float, bool]:
        calls.append("ours")
        return next(ours_rates), True

    def theirs() -> tuple[float, bool]:
        calls.append("theirs")
        return next(theirs_rates), True

    result = duel(ours, theirs, 4)

    assert calls == ["ours", "theirs", "theirs", "ours", "ours", "theirs", "theirs", "ours"]
    assert result["ratios"] == [1.1, 0.9, 1.2, 1.0]
    assert result["ahead"] == 2  # a tie is not ahead
    assert result["median_ratio"] == pytest.approx(1.05)
    assert result["p_value"] == 1.0
    assert result["check"] == "ok"


def test_duel_reports_a_wrong_metric_as_invalid() -> None:
    result = duel(lambda: (2.0, True), lambda: (1.0, False), 3)
    assert result["ahead"] == 3
    assert result["check"] == "INVALID"


def test_each_rival_is_a_peer_and_quix_keeps_its_place_in_the_results() -> None:
    from bench import peer_runs
    from bench.run import RIVALS

    assert list(RIVALS) == ["quix", "bytewax"]  # the order the duels run in
    assert RIVALS["quix"][1] == "head_to_head"  # (the key earlier results have)
    assert RIVALS["bytewax"][1] == "head_to_head_bytewax"
    assert set(RIVALS) <= set(peer_runs.COMMANDS)


@pytest.mark.parametrize("rival", ["quix", "bytewax"])
def test_a_head_to_head_pairs_the_lr_worker_with_the_rival_on_the_same_rows(
    monkeypatch, rival: str
) -> None:
    import bench.run as bench_run
    from bench.workloads import make

    plain = make(50)
    calls: list[tuple] = []

    def worker(workload, model, expected, kind, config=None):
        calls.append(("worker", workload, model, expected, kind))
        return 120.0, True

    def peer(system, topic, workload, model, expected):
        calls.append((system, workload, model, expected, topic))
        return 100.0, True

    monkeypatch.setattr(bench_run, "_worker", worker)
    monkeypatch.setattr(bench_run, "_peer", peer)

    result = bench_run.head_to_head(rival, plain, "backlog", 0.75, 3)

    assert [c[0] for c in calls] == ["worker", rival, rival, "worker", "worker", rival]
    assert all(c[1] is plain and c[2] == "lr" and c[3] == 0.75 for c in calls)
    assert {c[4] for c in calls if c[0] == "worker"} == {"no windows"}  # the table's [lr] row
    assert {c[4] for c in calls if c[0] == rival} == {"backlog"}
    assert result["against"] == bench_run.peers.LABELS[rival]
    assert result["ratios"] == [1.2, 1.2, 1.2]
    assert (result["ahead"], result["pairs"], result["check"]) == (3, 3, "ok")
    assert result["p_value"] == pytest.approx(0.25)


def test_a_rival_with_a_wrong_metric_or_output_makes_its_duel_invalid(monkeypatch) -> None:
    import bench.run as bench_run

    monkeypatch.setattr(bench_run, "_worker", lambda *a, **k: (90.0, True))
    monkeypatch.setattr(bench_run, "_peer", lambda *a: (100.0, False))

    result = bench_run.head_to_head("bytewax", None, "t", 0.5, 2)

    assert result["check"] == "INVALID"
    assert result["ahead"] == 0


def test_the_rivals_are_named_by_against_in_run_order() -> None:
    import argparse

    from bench.run import rivals_of

    assert rivals_of("bytewax,quix") == ("quix", "bytewax")
    assert rivals_of(" bytewax ") == ("bytewax",)
    with pytest.raises(argparse.ArgumentTypeError, match="unknown rival"):
        rivals_of("quix,flink")


def test_the_summary_line_names_the_rival() -> None:
    from bench.run import format_duel

    h = duel(lambda: (90.0, True), lambda: (100.0, True), 2)
    line = format_duel("Bytewax", h)

    assert line.startswith("streamlearn worker against Bytewax [lr], 2 pairs")
    assert "ahead in 0 of 2, events/s ratio median 0.900 (0.900-0.900)" in line
    assert line.endswith("sign test p = 0.500 (ok)")
