"""streamlearn against a peer (Quix Streams, Bytewax), head to head: pairs of back-to-back drains
of the same rows.

The throughput table compares each system with the limit measured around its own run; on these
machines the limit moves by up to 2x between two runs a minute apart, so two systems' ratios
from one table differ by more than the systems do. A pair of back-to-back runs of the two
systems on the same backlog (the order swapped from one pair to the next, so that neither
always runs in the other's wake) compares their events/s directly, and a sign test over the
pairs says whether one is ahead by more than chance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable


def sign_test(wins: int, pairs: int) -> float:
    """Two-sided p-value of ``wins`` of ``pairs`` under "each is ahead half the time"."""
    if pairs == 0:
        return 1.0
    extreme = min(wins, pairs - wins)
    tail = sum(math.comb(pairs, k) for k in range(extreme + 1)) / 2**pairs
    return min(1.0, 2 * tail)


def duel(
    ours: Callable[[], tuple[float, bool]],
    theirs: Callable[[], tuple[float, bool]],
    pairs: int,
    label: str = "streamlearn / Quix Streams",
) -> dict:
    """``pairs`` pairs of one run of ``ours`` and one of ``theirs`` (each run: events/s, metric
    ok), first ours then theirs, then the other way round; the events/s ratio of each pair."""
    sides = {"ours": ours, "theirs": theirs}
    runs = []
    for k in range(pairs):
        order = ("ours", "theirs") if k % 2 == 0 else ("theirs", "ours")
        result = {side: sides[side]() for side in order}  # (run in that order)
        (mine, mine_ok), (other, other_ok) = result["ours"], result["theirs"]
        runs.append({"ours": mine, "theirs": other, "ok": mine_ok and other_ok})
        print(
            f"  pair {k + 1}/{pairs}: {mine:,.0f} against {other:,.0f} ev/s, {label} "
            f"{mine / other:.3f}",
            flush=True,
        )
    ratios = [r["ours"] / r["theirs"] for r in runs]
    ahead = sum(r > 1 for r in ratios)
    return {
        "pairs": pairs,
        "ahead": ahead,
        "median_ratio": statistics.median(ratios) if ratios else None,
        "ratios": ratios,
        "p_value": sign_test(ahead, pairs),
        "check": "ok" if all(r["ok"] for r in runs) else "INVALID",
        "runs": runs,
    }
