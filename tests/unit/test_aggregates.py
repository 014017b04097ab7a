"""Declared features (app/features/aggregates.py through app/features/recipe.py) against a plain
reference.

The reference keeps every event a key has taken and recomputes each feature from the definition
of the issue (which events a window holds, sample std, ewm weights relative to the event's own
time, distinct values up to ``distinct_max``): nothing of the implementation's buckets, running
sums or decays.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import orjson
import pytest

from app.features.recipe import DISTINCT_CAPPED, TOO_LATE, Recipe
from app.features.spec import Numeric, default_spec, parse

EXPIRES = 400.0

WINDOWS = {
    "t100": {"kind": "tumbling", "size": 100},
    "h120": {"kind": "hopping", "size": 120, "step": 40},
    "h90": {"kind": "hopping", "size": 90, "step": 30},
    "s75": {"kind": "sliding", "size": 75},
    "life": {"kind": "lifetime"},
}
AGGREGATES = [
    {
        "fields": ["amount", "n"],
        "aggregations": ["count", "sum", "mean", "min", "max", "std"],
        "windows": list(WINDOWS),
    },
    {
        "fields": ["merchant", "amount", "flag"],
        "aggregations": ["distinct"],
        "windows": list(WINDOWS),
    },
    {"fields": ["amount"], "aggregations": ["ewm_mean"], "half_life": 90},
    {"fields": ["n"], "aggregations": ["max", "ewm_mean"], "windows": ["s75"], "half_life": 600},
    {"fields": ["amount", "n"], "aggregations": ["ewm_mean"], "half_life": 50},
]
SPEC = parse(WINDOWS, AGGREGATES, "test.toml", EXPIRES)
NUMERIC_AGGREGATIONS = ("sum", "mean", "min", "max", "std")


def recipe(distinct_max: int = 1000) -> Recipe:
    return Recipe.build(
        SPEC,
        window=3600.0,
        hop_window=3600.0,
        hop_step=600.0,
        expires=EXPIRES,
        distinct_max=distinct_max,
    )


# --- the reference ------------------------------------------------------------------------------


def in_window(window: dict, t: float, ts: float) -> bool:
    """Whether an event at ``ts`` is in ``window`` for an event at ``t`` (the issue's words)."""
    kind = window["kind"]
    if kind == "tumbling":
        return math.floor(ts / window["size"]) == math.floor(t / window["size"])
    if kind == "hopping":
        step = window["step"]
        last = math.floor(t / step)
        return last - round(window["size"] / step) + 1 <= math.floor(ts / step) <= last
    if kind == "sliding":
        return t - window["size"] < ts <= t
    return True


def is_number(value: object) -> bool:
    """int or float, not bool."""
    return type(value) is float or type(value) is int


def distinct_key(value: object) -> tuple | None:
    """Distinct values as JSON sees them: 2 and 2.0 are one number; true, 1 and "1" are three."""
    if isinstance(value, bool):
        return ("bool", value)
    if is_number(value):
        return ("number", value)  # 2 == 2.0 and hash(2) == hash(2.0)
    if isinstance(value, str):
        return ("str", value)
    return None  # not a scalar: not counted


class Reference:
    """Every key's taken events, in the order given, and its newest event time."""

    def __init__(self, distinct_max: int) -> None:
        self.distinct_max = distinct_max
        self.events: dict[str, list[tuple[float, dict]]] = {}
        self.newest: dict[str, float] = {}

    def step(self, key: str, t: float, x: dict) -> tuple[dict, int]:
        """The ``x`` an event should leave with, and the flags."""
        x = dict(x)
        previous = self.newest.get(key)
        if previous is not None and t < previous - EXPIRES:
            return x, TOO_LATE
        if previous is not None and t - previous > EXPIRES:
            previous = None  # forgotten
            del self.events[key]
        taken = self.events.setdefault(key, [])
        taken.append((t, dict(x)))
        self.newest[key] = t if previous is None else max(previous, t)
        features, capped = self.features(key, t)
        x.update(features)
        if previous is not None:
            x["secs_since_last"] = t - previous
        return x, DISTINCT_CAPPED if capped else 0

    def features(self, key: str, t: float) -> tuple[dict, bool]:
        taken = self.events[key]
        out: dict = {}
        capped = False
        for name, window in WINDOWS.items():
            held = [x for ts, x in taken if in_window(window, t, ts)]
            values_of = {}  # field: its numeric values in the window
            for entry in AGGREGATES:
                if name not in entry.get("windows", ()):
                    continue
                for aggregation in entry["aggregations"]:
                    if aggregation == "count":
                        out[f"count_{name}"] = len(held)
                    elif aggregation == "distinct":
                        for field in entry["fields"]:
                            keys = {distinct_key(x.get(field)) for x in held if field in x}
                            keys.discard(None)
                            if keys:
                                out[f"{field}_distinct_{name}"] = min(len(keys), self.distinct_max)
                                capped |= len(keys) > self.distinct_max
                    elif aggregation in NUMERIC_AGGREGATIONS:
                        for field in entry["fields"]:
                            if field not in values_of:
                                values_of[field] = [
                                    x[field] for x in held if is_number(x.get(field))
                                ]
                            values = values_of[field]
                            if values:
                                out[f"{field}_{aggregation}_{name}"] = numeric(aggregation, values)
        for entry in AGGREGATES:
            if "ewm_mean" not in entry["aggregations"]:
                continue
            half_life = entry["half_life"]
            label = {90: "90s", 600: "10m", 50: "50s"}[half_life]
            for field in entry["fields"]:
                pairs = [(ts, x[field]) for ts, x in taken if is_number(x.get(field))]
                if pairs:
                    weights = [2 ** (-(t - ts) / half_life) for ts, _ in pairs]
                    total = sum(w * v for w, (_, v) in zip(weights, pairs, strict=True))
                    out[f"{field}_ewm_mean_{label}"] = total / sum(weights)
        return out, capped


def numeric(aggregation: str, values: list) -> float:
    if aggregation == "sum":
        return math.fsum(values)
    mean = math.fsum(values) / len(values)
    if aggregation == "mean":
        return mean
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    if len(values) == 1:
        return 0.0
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def assert_features(got: dict, expected: dict, where: str) -> None:
    """Counts, min, max, distinct (and the event's own fields) exactly, the rest to 1e-9."""
    assert sorted(got) == sorted(expected), where
    for name, value in expected.items():
        if name.startswith("count_") or "_distinct_" in name:
            assert got[name] == value and type(got[name]) is int, f"{where}: {name}"
        elif "_min_" in name or "_max_" in name or not is_number(value):
            assert got[name] == value, f"{where}: {name}"
        elif not abs(got[name] - value) <= max(1e-9 * abs(value), 1e-9):  # approx, but faster
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), f"{where}: {name}"


# --- random streams ---------------------------------------------------------------------------

MERCHANTS = ["fuel", "food", "rent", "bank", "toys", "gym", "cafe", "taxi"]


def random_x(rng: random.Random) -> dict:
    x: dict = {}
    r = rng.random()
    if r < 0.6:
        x["amount"] = round(rng.uniform(-50, 150), 2)
    elif r < 0.7:
        x["amount"] = rng.randrange(-5, 20)  # an int
    elif r < 0.8:
        x["amount"] = "n/a"  # a string: distinct counts it, numeric aggregations do not
    elif r < 0.85:
        x["amount"] = rng.random() < 0.5  # a bool: the same
    # else: missing
    if rng.random() < 0.8:
        x["n"] = rng.randrange(0, 6)
    if rng.random() < 0.85:
        x["merchant"] = rng.choice(MERCHANTS)
    if rng.random() < 0.5:
        x["flag"] = rng.random() < 0.3
    if rng.random() < 0.05:
        x["merchant"] = ["not", "a", "scalar"]
    return x


def random_stream(seed: int, length: int) -> list[tuple[str, float, dict]]:
    """Keyed events: times mostly increasing (some on bucket edges, some equal), some late within
    ``expires``, a few too late, a few keys idle longer than ``expires``."""
    rng = random.Random(seed)
    keys = ["a", "b", "c", "d", "rare"]
    weights = [5, 4, 3, 2, 0.3]
    clock = rng.uniform(-1000, 1000)
    newest: dict[str, float] = {}
    events = []
    for _ in range(length):
        r = rng.random()
        if r < 0.005:
            clock += EXPIRES + rng.uniform(1, 200)  # every key forgotten
        elif r < 0.3:
            clock = float(math.ceil(clock / 10) * 10)  # on the edge of buckets (10 divides all)
        else:
            clock += rng.choice([0.0, rng.uniform(0, 5), rng.uniform(0, 40)])
        key = rng.choices(keys, weights)[0]
        ts = clock
        r = rng.random()
        if key in newest and r < 0.12:
            ts = newest[key] - rng.uniform(0, EXPIRES)  # late, within expires
            if rng.random() < 0.2:
                ts = newest[key] - EXPIRES  # the latest one may be
        elif key in newest and r < 0.15:
            ts = newest[key] - EXPIRES - rng.choice([1e-6, rng.uniform(1, 300)])  # too late
        if key in newest and ts < newest[key] - EXPIRES:
            pass  # too late: no state change
        elif key in newest and ts - newest[key] <= EXPIRES:
            newest[key] = max(newest[key], ts)
        else:
            newest[key] = ts
        events.append((key, ts, random_x(rng)))
    return events


def run(recipe_: Recipe, events, states=None):
    """Step ``events`` through ``recipe_``: the (x, flags) of each, and the states."""
    states = {} if states is None else states
    out = []
    for key, ts, x in events:
        x = dict(x)
        state, flags = recipe_.step(states.get(key), ts, x)
        states[key] = state
        out.append((x, flags))
    return out, states


# --- tests ------------------------------------------------------------------------------------


def test_the_spec_names_every_feature():
    names = SPEC.names
    assert len(names) == len(set(names))
    for window in WINDOWS:
        assert f"count_{window}" in names
        assert f"amount_std_{window}" in names and f"n_min_{window}" in names
        assert f"merchant_distinct_{window}" in names and f"flag_distinct_{window}" in names
    assert {
        "amount_ewm_mean_90s",
        "n_ewm_mean_10m",
        "amount_ewm_mean_50s",
        "n_ewm_mean_50s",
    } <= set(names)
    assert not any(name.startswith("count_") and name.count("_") > 1 for name in names)


@pytest.mark.parametrize("distinct_max", [1000, 3])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_feature_of_a_random_stream_is_the_reference(seed, distinct_max):
    events = random_stream(seed, 500)
    reference = Reference(distinct_max)
    under_test = recipe(distinct_max)
    states: dict = {}
    seen = {"late": 0, "too_late": 0, "forgotten": 0, "capped": 0}
    for i, (key, ts, x) in enumerate(events):
        expected, expected_flags = reference.step(key, ts, x)
        got = dict(x)
        before = orjson.dumps(states[key]) if key in states else None
        state, flags = under_test.step(states.get(key), ts, got)
        where = f"event {i} key {key} ts {ts}"
        assert flags == expected_flags, where
        assert_features(got, expected, where)
        if flags & TOO_LATE:
            assert got == x and orjson.dumps(state) == before, where
            seen["too_late"] += 1
        else:
            seen["late"] += ts < reference.newest[key]
            seen["forgotten"] += before is not None and "secs_since_last" not in got
            seen["capped"] += bool(flags & DISTINCT_CAPPED)
        states[key] = state
    # the stream did hold what the test is about
    assert seen["late"] > 20 and seen["too_late"] > 3 and seen["forgotten"] >= 1
    assert (seen["capped"] > 0) == (distinct_max < len(MERCHANTS))


def test_a_key_idle_longer_than_expires_starts_again():
    r = recipe()
    state, _ = r.step(None, 1000.0, x := {"amount": 1.0})
    assert x["count_life"] == 1 and "secs_since_last" not in x
    state, _ = r.step(state, 1000.0 + EXPIRES, x := {"amount": 2.0})  # idle exactly expires: kept
    assert x["count_life"] == 2 and x["secs_since_last"] == EXPIRES
    assert x["amount_sum_life"] == 3.0
    state, _ = r.step(state, 1000.0 + 2 * EXPIRES + 0.5, x := {"amount": 4.0})  # forgotten
    assert x["count_life"] == 1 and "secs_since_last" not in x
    assert x["amount_sum_life"] == 4.0 and x["amount_ewm_mean_90s"] == 4.0
    state, _ = r.step(state, 1000.0 + 2 * EXPIRES + 1.5, x := {"amount": 6.0})
    assert x["count_life"] == 2 and x["secs_since_last"] == 1.0


def test_too_late_events_change_nothing_and_the_edge_of_expires_is_taken():
    r = recipe()
    state, _ = r.step(None, 5000.0, {"amount": 1.0})
    frozen = orjson.dumps(state)
    x = {"amount": 9.0, "merchant": "fuel"}
    state, flags = r.step(state, 5000.0 - EXPIRES - 0.001, x)
    assert flags == TOO_LATE and x == {"amount": 9.0, "merchant": "fuel"}
    assert orjson.dumps(state) == frozen
    state, flags = r.step(state, 5000.0 - EXPIRES, x := {"amount": 3.0})  # exactly expires: taken
    assert flags == 0 and x["count_life"] == 2 and x["secs_since_last"] == -EXPIRES
    assert x["count_t100"] == 1 and x["amount_max_life"] == 3.0


def test_a_late_event_sees_the_whole_of_its_hopping_window():
    """Late by nearly ``expires``: its hopping window reaches ``size`` before that."""
    r = recipe()
    state = None
    for ts in (1000.0, 1030.0, 1070.0, 1100.0):
        state, _ = r.step(state, ts, {"amount": 1.0})
    state, _ = r.step(state, 1500.0, {"amount": 1.0})  # newest: 1500, horizon 1100
    x = {"amount": 2.0}
    state, flags = r.step(state, 1100.0, x)  # within expires
    # h120 (step 40): buckets 25..27 = [1000, 1120) holds 1000, 1030, 1070, 1100 and this one
    # h90 (step 30): buckets 34..36 = [1020, 1110) holds 1030, 1070, 1100 and this one
    assert flags == 0
    assert (x["count_h120"], x["count_h90"], x["count_t100"]) == (5, 4, 2)
    assert (x["count_s75"], x["count_life"]) == (4, 6)
    assert x["amount_sum_h120"] == 6.0


def test_std_is_the_sample_std_and_0_for_one_value():
    r = recipe()
    state, _ = r.step(None, 0.0, x := {"amount": 2.0})
    assert x["amount_std_t100"] == 0.0 and x["amount_mean_t100"] == 2.0
    state, _ = r.step(state, 1.0, x := {"amount": 4.0})
    assert x["amount_std_t100"] == pytest.approx(math.sqrt(2.0))
    state, _ = r.step(state, 2.0, x := {"amount": "4"})  # a string: not a value of amount
    assert x["amount_std_t100"] == pytest.approx(math.sqrt(2.0)) and x["count_t100"] == 3


def test_an_aggregate_of_nothing_is_absent():
    r = recipe()
    x = {"merchant": [1, 2], "flag": None}
    state, flags = r.step(None, 0.0, x)
    assert flags == 0
    assert {name for name in x if name.startswith("count_")} == {f"count_{w}" for w in WINDOWS}
    assert set(x) == {"merchant", "flag"} | {f"count_{w}" for w in WINDOWS}
    assert not any(isinstance(v, float) and math.isnan(v) for v in x.values())


def test_distinct_counts_values_as_json_does():
    r = recipe()
    state = None
    for value in ("1", 1, 1.0, True, "1", False, 0):
        x = {"flag": value}
        state, _ = r.step(state, 10.0, x)
    # "1", 1 (= 1.0), true, false, 0
    assert x["flag_distinct_life"] == 5


def test_distinct_is_capped_and_flagged_while_the_window_holds_more():
    spec = parse(
        {"t": {"kind": "tumbling", "size": 100}, "life": {"kind": "lifetime"}},
        [
            {"fields": ["merchant"], "aggregations": ["distinct"], "windows": ["t"]},
            {"fields": ["shop"], "aggregations": ["distinct"], "windows": ["life"]},
        ],
        "test.toml",
    )
    r = Recipe.build(spec, window=1, hop_window=1, hop_step=1, expires=EXPIRES, distinct_max=2)
    state = None
    got = []
    for value in ("a", "b", "c", "a", "d"):
        x = {"merchant": value}
        state, flags = r.step(state, 10.0, x)
        got.append((x["merchant_distinct_t"], flags))
    # a window holding 3 or 4 merchants: the feature is 2 and the event is flagged, whatever its
    # own value
    capped = DISTINCT_CAPPED
    assert got == [(1, 0), (2, 0), (2, capped), (2, capped), (2, capped)]
    state, flags = r.step(state, 100.0, x := {"merchant": "z"})  # the next tumbling window
    assert (x["merchant_distinct_t"], flags) == (1, 0)
    for shop in ("s1", "s2", "s3"):
        state, flags = r.step(state, 101.0, x := {"shop": shop})
    state, flags = r.step(state, 102.0, x := {"shop": "s1"})
    assert (x["shop_distinct_life"], flags) == (2, DISTINCT_CAPPED)


def test_state_survives_a_json_round_trip_and_copies_are_independent():
    r = recipe(distinct_max=4)
    events = random_stream(11, 500)
    head, tail = events[:250], events[250:]
    _, states = run(r, head)
    through_json = {k: orjson.loads(orjson.dumps(s)) for k, s in states.items()}
    copies = {k: r.copy(s) for k, s in states.items()}
    frozen = {k: orjson.dumps(s) for k, s in states.items()}
    assert through_json == states
    expected, after = run(r, tail, states)
    assert run(r, tail, through_json)[0] == expected
    assert {k: orjson.dumps(c) for k, c in copies.items()} == frozen  # untouched by the stepping
    assert run(r, tail, copies)[0] == expected
    assert after is states


def test_latest_is_the_features_of_the_newest_event():
    r = recipe(distinct_max=3)
    reference = Reference(3)
    states: dict = {}
    checked = 0
    for key, ts, x in random_stream(5, 400):
        expected, _ = reference.step(key, ts, x)
        got = dict(x)
        state, flags = r.step(states.get(key), ts, got)
        states[key] = state
        if flags & TOO_LATE or ts != state["t"]:
            continue
        features = {k: v for k, v in got.items() if k not in x and k != "secs_since_last"}
        assert r.latest(state) == features
        assert_features(r.latest(state), reference.features(key, ts)[0], f"{key} {ts}")
        checked += 1
    assert checked > 300


def test_without_aggregate_the_default_spec_names():
    assert parse(WINDOWS, None, "test.toml", 7200.0) is None
    assert parse(None, [], "test.toml") is None
    r = Recipe.build(
        parse(WINDOWS, None, "test.toml"), window=3600, hop_window=3600, hop_step=600, expires=7200
    )
    assert r.spec == default_spec(3600, 3600, 600) and r.spec.numeric == Numeric(None)
    assert r.fingerprint == "fixed:3600:3600:600:*:7200"  # as the fixed recipe's states carry
    state, _ = r.step(None, 100.0, {"a": 1.0, "b": 2, "s": "x"})
    x = {"a": 3.0, "b": 4, "s": "x"}
    state, flags = r.step(state, 160.0, x)
    assert flags == 0
    added = {name for name in x if name not in ("a", "b", "s")}
    assert added == {
        "count_tumbling_1h",
        "a_sum_tumbling_1h",
        "a_mean_tumbling_1h",
        "b_sum_tumbling_1h",
        "b_mean_tumbling_1h",
        "count_hopping_1h",
        "a_sum_hopping_1h",
        "a_mean_hopping_1h",
        "b_sum_hopping_1h",
        "b_mean_hopping_1h",
        "secs_since_last",
    }
    assert (x["count_tumbling_1h"], x["a_sum_tumbling_1h"], x["secs_since_last"]) == (2, 4.0, 60.0)
    x = {"a": 1.0}
    _, flags = r.step(state, 160.0 - 7200.0 - 1.0, x)
    assert flags == TOO_LATE and x == {"a": 1.0}


def test_a_hot_key_s_sliding_window_of_many_events_is_the_reference():
    # ~150 events per sliding window: counted through the panes and the events at their edges
    rng = random.Random(7)
    reference, under_test, state = Reference(1000), recipe(), None
    clock, newest, paned = 0.0, 0.0, 0
    for i in range(600):
        clock += rng.choice([0.0, rng.uniform(0, 0.8)])
        ts = clock - rng.uniform(0, 200) if rng.random() < 0.1 else clock  # late ones too
        newest = max(newest, ts)
        x = random_x(rng)
        expected, expected_flags = reference.step("hot", ts, x)
        got = dict(x)
        state, flags = under_test.step(state, ts, got)
        assert flags == expected_flags, i
        assert_features(got, expected, f"event {i} ts {ts}")
        paned += got["count_s75"] > 32
    assert paned > 400


def test_an_int_sum_beyond_64_bits_becomes_a_float_the_checkpoint_can_store():
    spec = parse(
        {"ever": {"kind": "lifetime"}, "h": {"kind": "hopping", "size": 20, "step": 10}},
        [{"fields": ["n"], "aggregations": ["sum"], "windows": ["ever", "h"]}],
        "test",
    )
    under_test = Recipe.build(spec, window=3600, hop_window=3600, hop_step=600, expires=7200)
    state, x = None, {}
    for i in range(20_000):  # 2e19 in all: past 2**64
        x = {"n": 10**15}
        state, _ = under_test.step(state, float(i) * 0.001, x)
    assert x["n_sum_ever"] == 2e19 and type(x["n_sum_ever"]) is float
    assert type(x["n_sum_h"]) is float  # two buckets of 1e19 each, merged
    orjson.dumps(state)  # does not raise


def test_ewm_mean_keeps_its_value_across_any_gap():
    # weights are relative to the field's newest value: no underflow after 1,000+ half-lives
    spec = parse(None, [{"fields": ["a"], "aggregations": ["ewm_mean"], "half_life": 1}], "t")
    under_test = Recipe.build(spec, window=3600, hop_window=3600, hop_step=600, expires=7200)
    for gap in (10.0, 1060.0, 1075.0, 7000.0):
        state, _ = under_test.step(None, 0.0, {"a": 0.3})
        x = {"b": 1}
        under_test.step(state, gap, x)
        assert x["a_ewm_mean_1s"] == 0.3, gap


def test_a_config_file_s_states_keep_their_fingerprint():
    # the one states stored by 84d09b2 carry: they are still read
    assert recipe().fingerprint == "declared:8d7356da6fec14fd"
    assert recipe(distinct_max=3).fingerprint != recipe().fingerprint
    assert recipe().made_by("declared:8d7356da6fec14fd") and not recipe().made_by(None)


def test_numeric_fields_are_the_default_spec_s_shape_only():
    spec = default_spec(60, 60, 30)
    for other in (
        replace(spec, windows=spec.windows[::-1]),
        replace(spec, outputs=spec.outputs[:-1]),
        replace(spec, outputs=(*spec.outputs, replace(spec.outputs[1], aggregation="max"))),
    ):
        with pytest.raises(ValueError, match="default spec's only"):
            Recipe(other, 120)
