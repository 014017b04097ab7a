"""app/features/windows.py: the default spec's one-pass step gives what its state says, on any
stream.

(Its values against the fixed recipe of earlier versions, to the bit: test_default_features.py.)
"""

from __future__ import annotations

import random

import orjson
import pytest

from app.features.windows import Windows, copy_state


@pytest.mark.parametrize(
    "windows",
    [
        Windows(3600.0, 3600.0, 600.0, 7200.0),
        Windows(10.0, 10.0, 10.0, 25.0),
        Windows(7, 20, 3, 50),
    ],
    ids=["defaults", "one-step-hop", "odd-sizes"],
)
def test_step_gives_the_aggregates_of_the_state_it_leaves(windows):
    rng = random.Random(7)
    states: dict[str, dict | None] = {}
    ts = 1000.0
    for _ in range(5000):
        key = f"k{rng.randrange(20)}"
        # mostly forward in time, sometimes late (by up to twice the expiry), sometimes a jump
        ts += rng.choice([0.0, rng.uniform(0, 5), rng.uniform(0, 60)])
        at = ts - rng.uniform(0, 2 * windows.expires) if rng.random() < 0.1 else ts
        values = {name: rng.uniform(-10, 10) for name in rng.sample(["a", "b", "c"], 2)}
        before = states.get(key)
        kept = copy_state(before) if before is not None else None
        frozen = orjson.dumps(before)
        state, tumbling, hopping = windows.step(before, at, values)
        expected = windows.aggregates(state, at)
        assert (tumbling, hopping) == expected
        # the same sums in the same order: the features a model sees are in that order
        assert [list(tumbling[1]), list(hopping[1])] == [list(expected[0][1]), list(expected[1][1])]
        # the event is in both its windows; a copy shares nothing with the state it copies
        assert tumbling[0] >= 1 and hopping[0] >= 1
        assert orjson.dumps(kept) == frozen
        states[key] = state
