"""The default spec's state of one key and its arithmetic: sums over a tumbling and a hopping
window (pure: no Faust, no Kafka, no settings).

The default spec (:func:`app.features.spec.default_spec`: count, sum and mean of numeric fields
over ``STREAMLEARN_WINDOW`` and ``STREAMLEARN_HOP_WINDOW`` / ``HOP_STEP``) keeps a key's state
in this layout, byte for byte the one the fixed recipe of earlier versions stored, so that the
key-windows values and checkpoints they wrote are read as they are::

    {"t": latest event time, "w": [[window index, n, {feature: sum}], ...],
                             "h": [[step index, n, {feature: sum}], ...]}

``w`` holds tumbling windows of ``window`` seconds; ``h`` holds buckets of ``hop_step`` seconds,
and the hopping aggregate of an event is the sum of the buckets of the last ``hop_window``
seconds up to the end of the event's step: the hopping window that holds the event and closes
first. Buckets that ended more than ``expires`` seconds before the key's latest event are dropped
(those of a late event's hopping window too). Reads the values to count; changes the state in
place (:func:`copy_state` keeps one); keeps nothing. :mod:`app.features.aggregates` calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import islice

#: int sums beyond these become floats (orjson, and so the checkpoint, stores 64-bit ints; a
#: float bound compares faster than 2**63)
SUM_HIGH = 9.2e18
SUM_LOW = -9.2e18


@dataclass(frozen=True)
class Windows:
    """Window sizes in seconds of event time, and how long a key's buckets are kept."""

    window: float
    hop_window: float
    hop_step: float
    expires: float

    #: how many step buckets make one hopping window
    hop_buckets: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hop_buckets", max(1, round(self.hop_window / self.hop_step)))

    def step(self, state: dict | None, ts: float, values: dict) -> tuple[dict, list, list]:
        """Count one event at ``ts`` with numeric ``values`` in ``state`` (in place; a new state
        if None), then give :meth:`aggregates` at ``ts``, in one pass (the per-event call): the
        state, and the ``[n, sums]`` of the event's two windows.

        The event's own buckets are the ones it was just counted in, so neither is searched for.

        >>> w = Windows(10, 10, 5, 100)
        >>> state, _, _ = w.step(None, 100.0, {"a": 1.0})
        >>> state, tumbling, hopping = w.step(state, 108.0, {"a": 2.0})
        >>> state
        {'t': 108.0, 'w': [[10, 2, {'a': 3.0}]], 'h': [[20, 1, {'a': 1.0}], [21, 1, {'a': 2.0}]]}
        >>> tumbling, hopping, (tumbling, hopping) == w.aggregates(state, 108.0)
        ([2, {'a': 3.0}], [2, {'a': 3.0}], True)
        """
        if state is None:
            state = {"t": ts, "w": [], "h": []}
        elif ts > state["t"]:
            state["t"] = ts
        horizon = state["t"] - self.expires
        own = _add(state["w"], math.floor(ts / self.window), values, horizon, self.window)
        last = math.floor(ts / self.hop_step)
        _add(state["h"], last, values, horizon, self.hop_step)
        return state, [own[1], own[2]], _hop_sum(state["h"], last - self.hop_buckets + 1, last)

    def aggregates(self, state: dict, ts: float) -> tuple[list, list]:
        """``[n, sums]`` of the tumbling window and of the hopping window of an event at ``ts``.

        >>> w = Windows(10, 10, 5, 100)
        >>> state, _, _ = w.step(None, 100.0, {"a": 1.0})
        >>> state, _, _ = w.step(state, 108.0, {"a": 2.0})
        >>> w.aggregates(state, 100.0)
        ([2, {'a': 3.0}], [1, {'a': 1.0}])
        """
        index = math.floor(ts / self.window)
        tumbling = [0, {}]
        for i, n, sums in reversed(state["w"]):  # the event's window is nearly always the newest
            if i == index:
                tumbling = [n, sums]
                break
        last = math.floor(ts / self.hop_step)
        return tumbling, _hop_sum(state["h"], last - self.hop_buckets + 1, last)


def copy_state(state: dict) -> dict:
    """A copy of ``state`` that shares nothing mutable with it."""
    return {
        "t": state["t"],
        "w": [[i, n, dict(sums)] for i, n, sums in state["w"]],
        "h": [[i, n, dict(sums)] for i, n, sums in state["h"]],
    }


def _hop_sum(buckets: list, first: int, last: int) -> list:
    """``[n, sums]`` of the step buckets ``first`` to ``last`` of ``buckets`` (sorted)."""
    start = len(buckets)
    while start and buckets[start - 1][0] >= first:  # from the newest: skip what expired
        start -= 1
    n_hop, hop = 0, {}
    for i, n, sums in islice(buckets, start, None):  # oldest first: the sums' order
        if i > last:
            break
        n_hop += n
        for name, total in sums.items():
            hop[name] = hop.get(name, 0) + total
    for name, total in hop.items():  # each bucket's sum fits; theirs may not
        if total > SUM_HIGH or total < SUM_LOW:
            hop[name] = float(total)
    return [n_hop, hop]


def _add(buckets: list, index: int, values: dict, horizon: float, size: float) -> list:
    """Count one event in bucket ``index`` of ``buckets`` (sorted), dropping expired ones;
    return that bucket."""
    while buckets and (buckets[0][0] + 1) * size < horizon:
        del buckets[0]  # expired: the oldest come first
    newest = buckets[-1][0] if buckets else None
    if newest == index:
        bucket = buckets[-1]  # nearly always: the newest bucket
    elif newest is None or index > newest:
        bucket = [index, 1, dict(values)]  # the key's first event in a later bucket
        buckets.append(bucket)
        return bucket
    else:
        bucket = next((b for b in reversed(buckets) if b[0] == index), None)  # a late event
        if bucket is None:
            bucket = [index, 1, dict(values)]
            buckets.append(bucket)
            buckets.sort(key=lambda b: b[0])
            return bucket
    bucket[1] += 1
    sums = bucket[2]
    for name, value in values.items():
        total = sums.get(name, 0) + value
        sums[name] = total if total < SUM_HIGH and total > SUM_LOW else float(total)
    return bucket
