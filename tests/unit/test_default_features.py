"""The default features (no ``[[aggregate]]``) are, to the bit, what commit 84d09b2 gave.

``tests/fixtures/default_features.json`` was written by :func:`record` on the code of 84d09b2,
before the fixed recipe became the default declared spec (``STREAMLEARN_STORE=memory://
.venv/bin/python -m tests.unit.test_default_features`` writes it: from that code only, else it
proves nothing). For four settings of ``STREAMLEARN_WINDOW`` / ``HOP_WINDOW`` / ``HOP_STEP`` /
``WINDOW_EXPIRES`` / ``WINDOW_FEATURES`` it holds a stream of keyed events (several keys, int
and float values, -0.0, strings, bools, missing fields, int sums past 64 bits, int and float
times, late, out-of-order and too-late events, keys idle past ``expires`` and past twice that)
and what the code made of it, as orjson bytes (a float's bytes are its shortest repr, which
gives back its exact bits; ``1`` and ``1.0``, ``0.0`` and ``-0.0`` differ), in full or as a
SHA-256 digest of those bytes:

* ``steps``: per event, ``Recipe.step``'s flags and digests of the event's ``x`` after it and of
  the key's state; every :data:`SAMPLE`-th ``x`` in full; every key's final state and its
  ``latest()`` view in full;
* ``shards``: the same events through ``tables.windows.ShardWindows`` on 1 and 3 partitions
  (each shard its keys' subset and its own states, a cache of :data:`CACHE` keys), with a
  checkpoint every :data:`CHECKPOINT_EVERY` events of a shard: per event the flags and the
  digest of ``x``; per checkpoint the digest of every value it writes to the key-windows table
  and its changelog, in order, and the keys it deletes (tombstones); a crash after the window
  values of a checkpoint landed but before the checkpoint itself, and the new owner's replay from
  the checkpoint before; at the end, the table's contents in full and the web view's
  ``latest()`` of each stored key.

The tests run the code as it is now through the same steps and compare every byte.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from pathlib import Path

import orjson
import pytest

from app.features.recipe import STATE_RESET
from app.settings import Settings
from tables.direct import to_store
from tables.windows import ShardWindows, window_state
from tests.unit.fakes import fake_table

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "default_features.json"

#: the settings of each case (STREAMLEARN_*), as Settings fields
CONFIGS = {
    "defaults": {},
    "window_features": {"window_features": "a,b,c,s,big"},
    "odd_sizes": {"window": 7.0, "hop_window": 20.0, "hop_step": 5.0, "window_expires": 50.0},
    "fractions": {
        "window": 1.5,
        "hop_window": 4.5,
        "hop_step": 1.5,
        "window_expires": 12.0,
        "window_features": "a, z, big",
    },
}
#: events per case, the shard counts, the cache size and the checkpoint spacing of ``shards``
EVENTS = 600
PARTITIONS = (1, 3)
CACHE = 3
CHECKPOINT_EVERY = 40
#: every how many events the fixture holds an event's features in full (else their digest)
SAMPLE = 20
KEYS = [f"k{i}" for i in range(10)] + ["whale", "idle"]


def recipe_of(case: str):
    return Settings(**CONFIGS[case]).recipe


def events_of(case: str, seed: int = 84) -> list:
    """``[key, ts, x]`` of the case's stream (times scaled to its ``WINDOW_EXPIRES``)."""
    expires = Settings(**CONFIGS[case]).window_expires
    scale = expires / 7200.0
    rng = random.Random(seed)
    clock = 1_767_225_600.0
    out = []
    for i in range(EVENTS):
        key = rng.choice(KEYS[:-2]) if rng.random() < 0.95 else "whale"
        if i > EVENTS // 2:
            key = KEYS[int(key[1]) % 5] if key[1:].isdigit() else key  # k5..k9 go idle
        if i in (3, EVENTS // 2, EVENTS - 5):
            key = "idle"  # 3 times, far apart: forgotten, deleted by the sweep in between
        step = rng.choice([0.0, rng.uniform(0, 30), rng.uniform(0, 400)]) * scale
        clock += step
        r = rng.random()
        if r < 0.08:
            ts = clock - rng.uniform(0, 1.3 * expires)  # late, some too late
        elif r < 0.16:
            ts = clock - rng.uniform(0, 60 * scale)  # out of order
        else:
            ts = clock
        if rng.random() < 0.15:
            ts = float(round(ts))
            ts = int(ts) if rng.random() < 0.5 else ts  # an int time
        out.append([key, ts, x_of(rng, key)])
    return out


def x_of(rng: random.Random, key: str) -> dict:
    x: dict = {}
    if rng.random() < 0.85:
        x["a"] = round(rng.uniform(-100, 100), rng.choice([0, 2, 6]))
    if rng.random() < 0.8:
        x["b"] = rng.randrange(-50, 50)
    if rng.random() < 0.5:
        x["c"] = rng.choice([2.0, 0.1, 1e-300, 3, -7.25, 1e15])
    if rng.random() < 0.2:
        x["z"] = rng.choice([-0.0, 0.0, -0.0, 1.5])
    x["s"] = rng.choice(["fuel", "food", "7"])
    if rng.random() < 0.3:
        x["f"] = rng.random() < 0.5
    if rng.random() < 0.2:
        x["n"] = rng.choice(["1", 1, True, None])
    if key == "whale":
        x["big"] = 3 * 10**18  # past 9.2e18 in a few events: the sums become floats
    if rng.random() < 0.5:  # the order of x's fields varies
        x = dict(reversed(list(x.items())))
    return x


def _bytes(value) -> str:
    return orjson.dumps(value).decode()


def _digest(value) -> str:
    return _digest_bytes(orjson.dumps(value))


def _digest_bytes(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:24]


def steps(case: str, events: list) -> dict:
    recipe = recipe_of(case)
    states: dict = {}
    out = []
    events = [[key, ts, dict(x)] for key, ts, x in events]
    for key, ts, x in events:
        state, flags = recipe.step(states.get(key), ts, x)
        states[key] = state
        out.append([flags, _digest(x), _digest(state)])
    return {
        "x": {str(i): _bytes(x) for i, (_, _, x) in enumerate(events) if i % SAMPLE == 0},
        "events": out,
        "states": {key: _bytes(state) for key, state in sorted(states.items())},
        "latest": {key: _bytes(recipe.latest(state)) for key, state in sorted(states.items())},
    }


def shard_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def shards(case: str, events: list, partitions: int) -> dict:
    """Every shard's outputs and writes (see the module's docstring)."""
    recipe = recipe_of(case)
    table = fake_table("key-windows")
    return {str(p): _shard(recipe, table, p, events, partitions) for p in range(partitions)}


def _shard(recipe, table, shard: int, events: list, partitions: int) -> dict:
    taken = [e for e in events if shard_of(e[0], partitions) == shard]
    windows = ShardWindows(shard, -1, CACHE, recipe, table)
    out: list = []
    writes: list = []
    committed: list[int] = []
    crash_at, crashed = len(taken) * 3 // 5, False
    offset = 0
    while offset < len(taken):
        key, ts, x = taken[offset]
        x = dict(x)
        flags = windows.update(key, ts, x)
        out.append([offset, flags, _digest(x)])
        if (offset + 1) % CHECKPOINT_EVERY == 0 or offset == len(taken) - 1:
            values, _ = windows.begin(offset)
            written = [[k, _digest_bytes(v)] for k, v in values.items() if v is not None]
            deleted = sorted(k for k, v in values.items() if v is None)  # (a set's order)
            writes.append([offset, written, deleted])
            to_store(table, shard, values)
            if not crashed and committed and offset >= crash_at:
                # the window values landed, the checkpoint at ``offset`` did not: the new owner
                # restores the one before and replays the events after it
                crashed, base = True, committed[-1]
                windows = ShardWindows(shard, base, CACHE, recipe, table)
                out.append(["crash", offset, base])
                offset = base + 1
                continue
            windows.committed(offset, values)
            committed.append(offset)
        offset += 1
    mine = sorted(k for k in table.data if shard_of(k, partitions) == shard)
    return {
        "events": out,
        "writes": writes,
        "table": [[k, table.data[k].decode()] for k in mine],
        "latest": {k: _latest(recipe, window_state(table, k, recipe)) for k in mine},
    }


def _latest(recipe, state: dict | None) -> str | None:
    return _bytes(recipe.latest(state)) if state is not None else None


def record() -> dict:
    """Everything the fixture holds, from the code as it is."""
    out = {}
    for case in CONFIGS:
        events = events_of(case)
        out[case] = {
            "settings": CONFIGS[case],
            "fingerprint": recipe_of(case).fingerprint,
            "input": events,
            "steps": steps(case, events),
            "shards": {str(n): shards(case, events, n) for n in PARTITIONS},
        }
    return out


@pytest.fixture(scope="module")
def fixture() -> dict:
    return orjson.loads(FIXTURE.read_bytes())


@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_stream_is_what_it_was(fixture, case):
    assert events_of(case) == fixture[case]["input"]  # (the same input, or the test is moot)
    assert CONFIGS[case] == fixture[case]["settings"]


@pytest.mark.parametrize("case", list(CONFIGS))
def test_each_step_gives_the_same_features_and_states(fixture, case):
    expected = fixture[case]["steps"]
    got = steps(case, fixture[case]["input"])
    for i, (want, have) in enumerate(zip(expected["events"], got["events"], strict=True)):
        assert have == want, f"{case}: event {i} {fixture[case]['input'][i]}"
    assert got["states"] == expected["states"]
    assert got["latest"] == expected["latest"]
    # the stream holds what the test is about
    flags = [e[0] for e in expected["events"]]
    assert flags.count(1) >= 5  # too late
    assert got["x"] == expected["x"]
    assert sum('"secs_since_last":-' in x for x in expected["x"].values()) >= 2  # late


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("case", list(CONFIGS))
def test_each_shard_writes_the_same_bytes(fixture, case, partitions):
    expected = fixture[case]["shards"][str(partitions)]
    got = shards(case, fixture[case]["input"], partitions)
    assert got.keys() == expected.keys()
    for shard, want in expected.items():
        have = got[shard]
        where = f"{case}, {partitions} partitions, shard {shard}"
        for i, (a, b) in enumerate(zip(want["events"], have["events"], strict=True)):
            assert b == a, f"{where}: step {i}"
        for i, (a, b) in enumerate(zip(want["writes"], have["writes"], strict=True)):
            assert b == a, f"{where}: checkpoint {i}"
        assert have["table"] == want["table"], where
        assert have["latest"] == want["latest"], where
    assert any(deleted for s in expected.values() for _, _, deleted in s["writes"])  # tombstones
    assert any(e[0] == "crash" for s in expected.values() for e in s["events"])


@pytest.mark.parametrize("fingerprinted", [True, False], ids=["r", "before-fingerprints"])
@pytest.mark.parametrize("case", list(CONFIGS))
def test_the_table_84d09b2_wrote_is_read_back(fixture, monkeypatch, case, fingerprinted):
    """The key-windows values 84d09b2 wrote (the fixture's final table of one shard, as it is;
    or without "r", as written before fingerprints) are read by the default spec's recipe: each
    key's state is the one its events made, its latest() view the one 84d09b2 showed, and its
    next event carries on from it. Features declared in a config file do not read them."""
    recipe = recipe_of(case)
    shard = fixture[case]["shards"]["1"]["0"]
    table = fake_table("key-windows")
    for key, value in shard["table"]:
        stored = orjson.loads(value)
        if not fingerprinted:
            del stored["r"]
        table.data[key] = orjson.dumps(stored)
    assert len(table.data) >= 5
    windows = ShardWindows(0, shard["writes"][-1][0], CACHE, recipe, table)
    for key in table.data:
        state = window_state(table, key, recipe)
        assert _bytes(state) == fixture[case]["steps"]["states"][key]
        assert _bytes(recipe.latest(state)) == shard["latest"][key]
        x = {"a": 1.0}
        assert windows.update(key, state["t"], x) == 0 and "secs_since_last" in x
    declared = Settings(
        windows_map={"w": {"kind": "tumbling", "size": 60}},
        aggregate_list=[{"fields": ["a"], "aggregations": ["count"], "windows": ["w"]}],
    ).recipe
    other = ShardWindows(0, shard["writes"][-1][0], CACHE, declared, table)
    assert all(other.update(key, 0.0, {}) == STATE_RESET for key in table.data)


def test_the_fingerprints_are_the_ones_stored_states_carry(fixture):
    for case in CONFIGS:
        assert recipe_of(case).fingerprint == fixture[case]["fingerprint"]


if __name__ == "__main__":
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_bytes(orjson.dumps(record()) + b"\n")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes)")
