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
