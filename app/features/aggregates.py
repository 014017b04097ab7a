"""The features of a spec for one key: its state and the arithmetic (pure: no Faust, no Kafka).

Reads a :class:`app.features.spec.FeatureSpec`, a config file's or the default one; keeps nothing
but what a key's state holds. A state is a plain JSON value, written to the key-windows table as
it is. A spec whose fields are named (every config file's) keeps::

    {"t": the key's newest event time,
     "w": [one per declared window, in the spec's order],
     "e": [[weighted sum, sum of weights, t_ref] per ewm_mean feature: the weights are
           relative to t_ref, the newest time of a value of its field (weight 1), so they
           never underflow]}

    tumbling, hopping  buckets [index, n, stats, seen], sorted by index (hopping: one per step)
    sliding            [events, panes]: the events [ts, {field: value}] of the last size +
                       expires seconds, by time, and buckets of size / 16 seconds over them
                       (a window of many events is the panes wholly inside it plus the events
                       of the two at its edges)
    lifetime           one bucket [0, n, stats, seen]
    stats              {field: [n, sum, min, max, m2]} (m2: Welford's sum of squared deviations)
    seen               {field: {value: 1}}, at most ``distinct_max`` + 1 values per field and
                       bucket (the one more says that the bucket holds more than the cap)

Buckets older than ``expires`` before the key's newest event are dropped (late events within
``expires`` still find theirs); :mod:`app.features.recipe` forgets keys idle longer than that and
refuses events older than that.

The default spec (:func:`app.features.spec.default_spec`: count, sum and mean of every numeric
field, :class:`app.features.spec.Numeric`, over one tumbling and one hopping window) keeps only
each field's sum per bucket, in the layout of :mod:`app.features.windows`: the one the fixed recipe
of earlier versions stored, so that their states are read as they are and its features are theirs to
the bit. Hence its ``mean`` is the sum per event of the window, and a late event's hopping window
holds only the buckets within ``expires`` of the key's newest event.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left, bisect_right

import orjson

from app.features.encode import add_aggregates, window_values
from app.features.spec import FeatureSpec, Numeric, WindowDef
from app.features.windows import SUM_HIGH, SUM_LOW, Windows, copy_state

#: the version of the layout of a named-fields spec's state, part of its fingerprint
STATE_LAYOUT = 2

_COUNT, _SUM, _MEAN, _MIN, _MAX, _STD, _DISTINCT, _EWM = range(8)
_CODES = {
    "count": _COUNT,
    "sum": _SUM,
    "mean": _MEAN,
    "min": _MIN,
    "max": _MAX,
    "std": _STD,
    "distinct": _DISTINCT,
    "ewm_mean": _EWM,
}
_TUMBLING, _HOPPING, _SLIDING, _LIFETIME = range(4)
_KIND = {"tumbling": _TUMBLING, "hopping": _HOPPING, "sliding": _SLIDING, "lifetime": _LIFETIME}
#: a new key's state of each window kind
_EMPTY = {
    _TUMBLING: list,
    _HOPPING: list,
    _SLIDING: lambda: [[], []],
    _LIFETIME: lambda: [[0, 0, {}, {}]],
}
# The per-event loops zip a state's lists with the spec's without strict=True (twice the cost
# of a plain zip on Python 3.11): a state read back always has its spec's shape, as its
# fingerprint says (app/features/recipe.py).


#: panes per sliding window, and the most events of a window counted one by one
PANES = 16
SCAN = 32


def value_key(value: object) -> str | None:
    """The key ``distinct`` counts ``value`` under (None: not a scalar, not counted).

    >>> value_key("fuel"), value_key(2), value_key(2.0), value_key(True), value_key([1])
    ('fuel', '\\x002', '\\x002', '\\x00True', None)
    """
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return f"\x00{int(value)}" if value.is_integer() else f"\x00{value!r}"
    if kind is int or kind is bool:
        return f"\x00{value!r}"
    return None


class Aggregates:
    """The features of a spec: :meth:`add` an event to a key's state, and write the features of
    an event into its ``x``."""

    def __init__(self, spec: FeatureSpec, expires: float, distinct_max: int) -> None:
        self.spec = spec
        self.expires = expires
        self.distinct_max = distinct_max
        numeric = spec.numeric
        if numeric is not None:  # the default spec: sums in app/features/windows.py's layout
            tumbling, hopping = _default_windows(spec)
            self.sums = Windows(tumbling.size, hopping.size, hopping.step, expires)
            self.labels = (tumbling.name, hopping.name)
            self.only = numeric.only
            only = ",".join(sorted(numeric.only)) if numeric.only is not None else "*"
            #: what a stored state must have been made by (see :attr:`app.features.recipe.Recipe.
            #: fingerprint`): the fixed recipe's, as earlier versions stored it
            self.fingerprint = (
                f"fixed:{tumbling.size:g}:{hopping.size:g}:{hopping.step:g}:{only}:{expires:g}"
            )
            # its own add, write and copy (an event's call does not enter, nor set up the
            # frame of, the named fields' longer ones)
            self.add, self.write, self.copy = self._add_sums, self._write_sums, copy_state
            return
        made_of = repr((STATE_LAYOUT, spec, expires, distinct_max))
        self.fingerprint = "declared:" + hashlib.sha256(made_of.encode()).hexdigest()[:16]
        #: per window: (kind, size, step, buckets per hopping window, numeric fields,
        #: distinct fields)
        self.windows = []
        for i, w in enumerate(spec.windows):
            used = [o for o in spec.outputs if o.window == i]
            numeric = tuple(
                dict.fromkeys(o.field for o in used if o.aggregation not in ("count", "distinct"))
            )
            distinct = tuple(dict.fromkeys(o.field for o in used if o.aggregation == "distinct"))
            buckets = max(1, round(w.size / w.step)) if w.kind == "hopping" else 1
            step = w.size / PANES if w.kind == "sliding" else w.step
            self.windows.append((_KIND[w.kind], w.size, step, buckets, numeric, distinct))
        #: ewm_mean features: (field, half life, name)
        self.ewm = [
            (o.field, o.half_life, o.name) for o in spec.outputs if o.aggregation == "ewm_mean"
        ]
        #: per window, what it writes (in the spec's order, which groups them so):
        #: (count's name or None, ((field, ((code, name), ...)), ...) of the numeric
        #: aggregations, ((field, name), ...) of distinct)
        self.plan = []
        for i in range(len(spec.windows)):
            used = [o for o in spec.outputs if o.window == i]
            count = next((o.name for o in used if o.aggregation == "count"), None)
            groups: dict[str, list] = {}
            for o in used:
                if o.aggregation not in ("count", "distinct"):
                    groups.setdefault(o.field, []).append((_CODES[o.aggregation], o.name))
            distinct = tuple((o.field, o.name) for o in used if o.aggregation == "distinct")
            numeric = tuple((field, tuple(outs)) for field, outs in groups.items())
            self.plan.append((count, numeric, distinct))

    def new(self, ts: float) -> dict:
        """The state of a key before its first event at ``ts``."""
        return {
            "t": ts,
            "w": [_EMPTY[w[0]]() for w in self.windows],
            "e": [[0.0, 0.0, ts] for _ in self.ewm],
        }

    def add(self, state: dict | None, ts: float, x: dict) -> tuple[dict, bool]:
        """Count an event at ``ts`` with features ``x`` in ``state`` (in place; a new state if
        None), then write its features into ``x``: the state, and whether a ``distinct`` value
        was refused because its window holds ``distinct_max`` already."""
        if state is None:
            state = self.new(ts)
        elif ts > state["t"]:
            state["t"] = ts
        newest = state["t"]
        capped = False
        for spec, held in zip(self.windows, state["w"]):  # noqa: B905 (hot path)
            kind, size, step, _, numeric, distinct = spec
            if kind == _SLIDING:
                horizon = newest - size - self.expires
                _insert(held[0], ts, x, numeric, distinct, horizon)
                pane = _bucket(held[1], math.floor(ts / step), step, horizon)
                capped |= self._count(pane, x, numeric, distinct)
                continue
            if kind == _LIFETIME:
                bucket = held[0]
            else:
                width = size if kind == _TUMBLING else step
                # a late event's hopping window starts up to size before its own step
                horizon = newest - self.expires - (size if kind == _HOPPING else 0.0)
                bucket = _bucket(held, math.floor(ts / width), width, horizon)
            capped |= self._count(bucket, x, numeric, distinct)
        for (field, half_life, _), ewm in zip(self.ewm, state["e"]):  # noqa: B905 (hot path)
            value = x.get(field)
            kind = type(value)
            if kind is float or kind is int:
                total, weights, reference = ewm
                if weights == 0.0:  # the field's first value
                    ewm[0], ewm[1], ewm[2] = value, 1.0, ts
                elif ts >= reference:  # the newest value: weight 1, the others decay
                    decay = 2.0 ** (-(ts - reference) / half_life)
                    ewm[0], ewm[1], ewm[2] = total * decay + value, weights * decay + 1.0, ts
                else:  # a late value
                    weight = 2.0 ** (-(reference - ts) / half_life)
                    ewm[0] = total + weight * value
                    ewm[1] = weights + weight
        capped |= self.write(state, ts, x)
        return state, capped

    def write(self, state: dict, ts: float, x: dict) -> bool:
        """Write into ``x`` the features of an event at ``ts`` already counted in ``state``;
        whether one of its windows holds more than ``distinct_max`` values of a field."""
        capped = False
        cap = self.distinct_max
        for spec, held, plan in zip(self.windows, state["w"], self.plan):  # noqa: B905 (hot path)
            kind, size, step, span, numeric, distinct = spec
            if kind == _LIFETIME:
                window = held[0]
            elif kind == _TUMBLING:
                index = math.floor(ts / size)
                window = held[-1] if held and held[-1][0] == index else None
                if window is None:  # a late event's
                    window = next((b for b in reversed(held) if b[0] == index), None)
                    if window is None:
                        continue
            elif kind == _HOPPING:
                last = math.floor(ts / step)
                window = self._merge(held, last - span + 1, last)
                if window is None:
                    continue
            else:
                window, over = self._sliding(held, ts, size, step, ts >= state["t"], spec)
                capped |= over
            count_name, groups, distincts = plan
            if count_name is not None:
                x[count_name] = window[1]
            all_stats = window[2]
            for field, outs in groups:
                stats = all_stats.get(field)
                if stats is None:
                    continue  # no event of the window has this field: absent, never NaN
                n, total, low, high, m2 = stats
                for code, name in outs:
                    if code == _SUM:
                        x[name] = total
                    elif code == _MEAN:
                        x[name] = total / n
                    elif code == _MIN:
                        x[name] = low
                    elif code == _MAX:
                        x[name] = high
                    else:
                        x[name] = math.sqrt(max(m2, 0.0) / (n - 1)) if n > 1 else 0.0
            for field, name in distincts:
                seen = window[3].get(field)
                if seen:
                    x[name] = min(len(seen), cap)
                    capped |= len(seen) > cap
        for (_, _, name), (total, weights, _) in zip(self.ewm, state["e"]):  # noqa: B905
            if weights > 0.0:
                x[name] = total / weights
        return capped

    def copy(self, state: dict) -> dict:
        """A copy of ``state`` that shares nothing mutable with it."""
        return orjson.loads(orjson.dumps(state))

    def _add_sums(self, state: dict | None, ts: float, x: dict) -> tuple[dict, bool]:
        """:meth:`add` of the default spec."""
        state, tumbling, hopping = self.sums.step(state, ts, window_values(x, self.only))
        tumbling_name, hopping_name = self.labels
        add_aggregates(x, tumbling_name, tumbling)
        add_aggregates(x, hopping_name, hopping)
        return state, False

    def _write_sums(self, state: dict, ts: float, x: dict) -> bool:
        """:meth:`write` of the default spec."""
        tumbling, hopping = self.sums.aggregates(state, ts)
        tumbling_name, hopping_name = self.labels
        add_aggregates(x, tumbling_name, tumbling)
        add_aggregates(x, hopping_name, hopping)
        return False

    def _count(self, bucket: list, x: dict, numeric: tuple, distinct: tuple) -> bool:
        """Count one event with features ``x`` in ``bucket``; whether a distinct value was
        refused (the bucket holds ``distinct_max`` + 1 values of that field already)."""
        bucket[1] += 1
        stats = bucket[2]
        for field in numeric:
            value = x.get(field)
            kind = type(value)
            if kind is not float and kind is not int:
                continue  # missing, a string or a bool: not counted for this field
            held = stats.get(field)
            if held is None:
                stats[field] = [1, value, value, value, 0.0]
                continue
            n, total = held[0], held[1]
            mean = total / n
            n += 1
            total += value
            if total > SUM_HIGH or total < SUM_LOW:  # an int sum past what JSON stores
                total = float(total)
            held[0] = n
            held[1] = total
            if value < held[2]:
                held[2] = value
            if value > held[3]:
                held[3] = value
            held[4] += (value - mean) * (value - total / n)
        capped = False
        for field in distinct:
            key = value_key(x.get(field))
            if key is None:
                continue
            seen = bucket[3].get(field)
            if seen is None:
                bucket[3][field] = {key: 1}
            elif key not in seen:
                if len(seen) <= self.distinct_max:  # one more than the cap: "more than it"
                    seen[key] = 1
                else:
                    capped = True
        return capped

    def _sliding(
        self, held: list, ts: float, size: float, width: float, newest: bool, spec: tuple
    ) -> tuple[list, bool]:
        """The bucket of the events in ``(ts - size, ts]``, and whether it holds more than
        ``distinct_max`` values of a field. Few events: counted one by one; many: the panes
        wholly inside, and the events of the panes at the two edges (``newest``: no event is
        later than ``ts``, so the pane holding ``ts`` is wholly inside)."""
        events, panes = held
        numeric, distinct = spec[4], spec[5]
        lo = bisect_right(events, ts - size, key=_time)
        hi = bisect_right(events, ts, key=_time)
        window = [0, 0, {}, {}]
        capped = False
        first = math.floor((ts - size) / width) + 1  # the first pane wholly inside
        last = math.floor(ts / width) - (0 if newest else 1)  # and the last
        if hi - lo <= SCAN or first > last:
            for _, values in events[lo:hi]:
                capped |= self._count(window, values, numeric, distinct)
            return window, capped
        i = lo
        while i < hi and math.floor(events[i][0] / width) < first:
            capped |= self._count(window, events[i][1], numeric, distinct)
            i += 1
        for pane in panes[bisect_left(panes, first, key=_index) :]:
            if pane[0] > last:
                break
            _fold(window, pane)
        j = hi
        while j > i and math.floor(events[j - 1][0] / width) > last:
            j -= 1
        for _, values in events[j:hi]:
            capped |= self._count(window, values, numeric, distinct)
        return window, capped

    def _merge(self, buckets: list, first: int, last: int) -> list | None:
        """One bucket of every bucket of ``buckets`` from index ``first`` to ``last`` (oldest
        first: the sums' order), or None if there is none."""
        start = len(buckets)
        while start and buckets[start - 1][0] >= first:
            start -= 1
        chosen = [b for b in buckets[start:] if b[0] <= last]
        if len(chosen) == 1:
            return chosen[0]
        if not chosen:
            return None
        window = [first, 0, {}, {}]
        for bucket in chosen:
            _fold(window, bucket)
        return window


def _default_windows(spec: FeatureSpec) -> tuple[WindowDef, WindowDef]:
    """The tumbling and the hopping window of the default spec, checked: its :class:`Numeric`
    fields are summed in :mod:`app.features.windows`'s layout, which holds these two windows and
    their ``count``, and the ``sum`` and ``mean`` of those fields, only."""
    kinds = tuple(w.kind for w in spec.windows)
    outputs = sorted((o.window, o.aggregation, isinstance(o.field, Numeric)) for o in spec.outputs)
    expected = sorted((w, a, a != "count") for w in (0, 1) for a in ("count", "sum", "mean"))
    if kinds != ("tumbling", "hopping") or outputs != expected:
        raise ValueError(f"numeric fields are the default spec's only, not of {spec}")
    return spec.windows[0], spec.windows[1]


def _fold(into: list, bucket: list) -> None:
    """Add ``bucket`` (not changed) to ``into``, a bucket of its own."""
    into[1] += bucket[1]
    stats = into[2]
    for field, part in bucket[2].items():
        held = stats.get(field)
        if held is None:
            stats[field] = list(part)
            continue
        na, sa = held[0], held[1]
        nb, sb = part[0], part[1]
        n = na + nb
        delta = sb / nb - sa / na
        held[0] = n
        total = sa + sb
        held[1] = total if total < SUM_HIGH and total > SUM_LOW else float(total)
        if part[2] < held[2]:
            held[2] = part[2]
        if part[3] > held[3]:
            held[3] = part[3]
        held[4] = held[4] + part[4] + delta * delta * na * nb / n  # Chan et al.
    seen = into[3]
    for field, values in bucket[3].items():
        held = seen.get(field)
        if held is None:
            seen[field] = dict(values)
        else:
            held.update(values)


def _time(event: list) -> float:
    return event[0]


def _insert(
    events: list, ts: float, x: dict, numeric: tuple, distinct: tuple, horizon: float
) -> None:
    """Keep an event of a sliding window (what its fields need of it), in time order, and drop
    the ones no event within ``expires`` can reach any more (time <= ``horizon``)."""
    values = {}
    for field in numeric:
        value = x.get(field)
        if type(value) is float or type(value) is int:
            values[field] = value
    for field in distinct:
        value = x.get(field)
        if value_key(value) is not None:
            values[field] = value
    drop = 0
    while drop < len(events) and events[drop][0] <= horizon:
        drop += 1
    if drop:
        del events[:drop]
    if not events or ts >= events[-1][0]:
        events.append([ts, values])
    else:
        events.insert(bisect_right(events, ts, key=_time), [ts, values])


def _bucket(buckets: list, index: int, width: float, horizon: float) -> list:
    """Bucket ``index`` of ``buckets`` (sorted), added if new, after dropping the ones that
    ended before ``horizon``."""
    drop = 0
    while drop < len(buckets) and (buckets[drop][0] + 1) * width < horizon:
        drop += 1
    if drop:
        del buckets[:drop]
    if buckets and buckets[-1][0] == index:
        return buckets[-1]
    if not buckets or index > buckets[-1][0]:
        bucket = [index, 0, {}, {}]
        buckets.append(bucket)
        return bucket
    for bucket in reversed(buckets):  # a late event
        if bucket[0] == index:
            return bucket
    bucket = [index, 0, {}, {}]
    buckets.insert(bisect_right(buckets, index, key=_index), bucket)
    return bucket


def _index(bucket: list) -> int:
    return bucket[0]
