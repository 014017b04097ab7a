"""ShardWindows: what a checkpoint writes, and what a new owner reads back after a crash."""

import orjson
import pytest

from app.settings import Settings
from tables import windows as windows_module
from tables.direct import to_changelog, to_store
from tests.unit.fakes import FakeOutbox, fake_table

#: the settings' recipe (no config file: the default spec)
RECIPE = Settings().recipe
TABLE = fake_table("key-windows")


@pytest.fixture
def table():
    """The key-windows store as a plain dict, and its changelog as a list (no Kafka, no Faust)."""
    TABLE.data.clear()
    return TABLE.data


def ShardWindows(shard, base, cache_size, recipe=RECIPE):  # noqa: N802 - as the class reads
    """``tables.windows.ShardWindows`` over the test's table."""
    return windows_module.ShardWindows(shard, base, cache_size, recipe, TABLE)


def land(values):
    """What a checkpoint does with its window values (tables/live_shard.py): store and changelog."""
    to_store(TABLE, 0, values)
    to_changelog(TABLE, 0, values, FakeOutbox())


#: the default spec's tumbling window (the settings' recipe: no config file)
TUMBLING = RECIPE.spec.windows[0].name


def count(windows, key, ts):
    """The tumbling count an event of ``key`` at ``ts`` gets (the default spec)."""
    x = {"a": 1.0}
    windows.update(key, ts, x)
    return x[f"count_{TUMBLING}"]


def checkpoint(windows, upto):
    values, _ = windows.begin(upto)
    land(values)
    windows.committed(upto, values)


def test_a_replay_after_a_crash_counts_each_event_once(table):
    first = ShardWindows(0, base=-1, cache_size=100)
    assert [count(first, "k", ts) for ts in (10.0, 20.0)] == [1, 2]  # offsets 0, 1
    checkpoint(first, upto=1)
    assert count(first, "k", 30.0) == 3  # offset 2
    values, _ = first.begin(upto=2)
    land(values)  # the window values land, then the worker dies
    # ... before the checkpoint at offset 2: the new owner restores the one at offset 1
    after_crash = ShardWindows(0, base=1, cache_size=100)
    x = {"a": 1.0}
    after_crash.update("k", 30.0, x)  # offset 2, replayed
    assert (x[f"count_{TUMBLING}"], x[f"a_sum_{TUMBLING}"], x["secs_since_last"]) == (3, 3.0, 10.0)
    # had the checkpoint at offset 2 landed, the stored state is the newer one
    landed = ShardWindows(0, base=2, cache_size=100)
    assert count(landed, "k", 40.0) == 4


def test_a_failed_checkpoint_keeps_the_older_fallback(table):
    windows = ShardWindows(0, base=-1, cache_size=100)
    count(windows, "k", 10.0)
    checkpoint(windows, upto=0)
    count(windows, "k", 20.0)
    values, started = windows.begin(upto=1)
    windows.abort(started)  # e.g. a flush failed: the checkpoint at 1 was never written
    count(windows, "k", 30.0)
    values, _ = windows.begin(upto=2)
    land(values)
    restored = ShardWindows(0, base=0, cache_size=100)  # the last checkpoint written
    assert count(restored, "k", 20.0) == 2


def test_the_cache_evicts_old_keys_and_deletes_expired_ones(table):
    windows = ShardWindows(0, base=-1, cache_size=1)
    count(windows, "old", 0.0)
    count(windows, "new", 2 * RECIPE.expires + 10_000.0)
    checkpoint(windows, upto=1)
    assert list(windows.cache) == ["new"]
    assert "old" in table
    checkpoint(windows, upto=1)  # the next checkpoint deletes what expired
    assert "old" not in table and "new" in table
    restored = ShardWindows(0, base=1, cache_size=1)
    assert count(restored, "new", 2 * RECIPE.expires + 10_001.0) == 2  # read back from the table


def test_a_key_stored_by_other_features_starts_again_and_is_flagged(table):
    from app.features.recipe import STATE_RESET, Recipe
    from app.features.spec import parse

    spec = parse(
        {"w": {"kind": "sliding", "size": 60}},
        [{"fields": ["a"], "aggregations": ["count", "max"], "windows": ["w"]}],
        "test",
    )
    declared = Recipe.build(spec, window=3600, hop_window=3600, hop_step=600, expires=7200)
    fixed = ShardWindows(0, base=-1, cache_size=100)  # the default spec
    count(fixed, "k", 10.0)
    checkpoint(fixed, upto=0)
    legacy = orjson.loads(table["k"])
    assert legacy["r"] == RECIPE.fingerprint
    # the config file now declares features: the stored state is not read, the key starts again
    after = ShardWindows(0, base=0, cache_size=100, recipe=declared)
    x = {"a": 2.0}
    assert after.update("k", 20.0, x) == STATE_RESET
    assert x == {"a": 2.0, "count_w": 1, "a_max_w": 2.0}  # no secs_since_last: a new key
    x = {"a": 1.0}
    assert after.update("k", 30.0, x) == 0 and x["count_w"] == 2
    # a value stored before fingerprints (no "r") was made by the fixed recipe: the default spec
    del legacy["r"]
    table["k"] = orjson.dumps(legacy)
    assert count(ShardWindows(0, base=0, cache_size=100), "k", 20.0) == 2
    assert (
        ShardWindows(0, base=0, cache_size=100, recipe=declared).update("k", 20.0, {})
        == STATE_RESET
    )


def test_the_sweep_deletes_keys_that_left_the_cache_before_they_were_idle_long(table):
    windows = ShardWindows(0, base=-1, cache_size=2)
    for i in range(10):
        count(windows, f"k{i}", float(i))
    checkpoint(windows, upto=9)  # k0..k7 leave the cache, recent still: kept in the table
    assert sorted(windows.cache) == ["k8", "k9"] and len(table) == 10 and not windows.expired
    later = 2 * RECIPE.expires + 100.0
    count(windows, "new", later)  # the shard's time moves on: k0..k9 are forgettable now
    checkpoint(windows, upto=10)
    # k8 leaves the cache now (deleted as before); the sweep finds k0..k7 in the table
    assert windows.expired == {f"k{i}" for i in range(9)}
    assert len(table) == 11  # deleted by the next checkpoint, as an expired key is
    checkpoint(windows, upto=10)
    assert sorted(table) == ["k9", "new"] and not windows.expired
    # k9 is in the cache: idle too, but the cache decides (kept until it leaves it)
    restored = ShardWindows(0, base=10, cache_size=2)
    assert count(restored, "k0", later + 1.0) == 1  # starts again, as after the forget rule
    assert count(restored, "new", later + 2.0) == 2


def test_the_sweep_reads_a_batch_at_a_time_and_spares_a_key_that_comes_back(table):
    windows = ShardWindows(0, base=-1, cache_size=1)
    for i in range(8):
        count(windows, f"k{i}", float(i))
    checkpoint(windows, upto=7)  # (its sweep's pass finds nothing forgettable yet)
    later = 2 * RECIPE.expires + 100.0
    count(windows, "new", later)
    values, _ = windows.begin(upto=8)
    land(values)
    windows.base = 8  # committed by hand, to sweep a few keys at a time below
    windows.expired.clear()
    windows.cache = {"new": windows.cache["new"]}
    windows.sweep(limit=3)
    windows.sweep(limit=3)
    assert windows.expired == {f"k{i}" for i in range(6)} and windows.sweep_after == b"k5"
    windows.sweep(limit=3)  # k6, k7 and "new" (in the cache: spared), the end: the pass ends
    assert windows.expired == {f"k{i}" for i in range(8)} and windows.sweep_after is None
    windows.sweep(limit=3)  # the shard's time has not moved since the pass began: none starts
    assert windows.sweep_after is None  # (a pass would have read 3 keys and stopped after k2)
    count(windows, "k3", later + 1.0)  # k3 comes back before the next checkpoint
    checkpoint(windows, upto=9)
    assert sorted(table) == ["k3", "new"]
    assert orjson.loads(table["k3"])["s"]["t"] == later + 1.0


def test_the_sweep_deletes_a_key_stored_by_other_features_once_it_is_idle_as_long(table):
    from app.features.recipe import STATE_RESET, Recipe

    other = Recipe.build(None, window=60, hop_window=60, hop_step=10, expires=120)
    old = ShardWindows(0, base=-1, cache_size=10, recipe=other)
    for key in ("a", "b"):
        old.update(key, 5.0, {"a": 1.0})
    checkpoint(old, upto=1)
    windows = ShardWindows(0, base=1, cache_size=10)
    count(windows, "n", 10.0)
    checkpoint(windows, upto=2)
    assert not windows.expired  # not idle long: its next event starts it again, counted
    assert windows.update("a", 20.0, {"a": 1.0}) == STATE_RESET
    count(windows, "n", 2 * RECIPE.expires + 100.0)
    checkpoint(windows, upto=4)
    assert windows.expired == {"b"}
    checkpoint(windows, upto=4)
    assert sorted(table) == ["a", "n"]


def test_the_sweep_keeps_what_it_cannot_read_and_goes_on(table, caplog):
    windows = ShardWindows(0, base=-1, cache_size=1)
    for key in ("a", "c"):
        count(windows, key, 1.0)
    checkpoint(windows, upto=1)
    table["b"] = b"not json"
    count(windows, "z", 2 * RECIPE.expires + 100.0)
    checkpoint(windows, upto=2)
    assert windows.unreadable == 1 and windows.expired == {"a", "c"}
    assert "a key-windows entry the sweep cannot read: kept" in caplog.text


def test_stored_scans_one_partition_of_a_rocksdict_store_in_key_order(tmp_path):
    from types import SimpleNamespace

    from rocksdict import Options, Rdict

    from tables.direct import stored

    db = Rdict(str(tmp_path / "p0"), options=Options(raw_mode=True))
    offset_key = b"__faust\0offset__"
    for key in (b"c", b"a", b"b", offset_key, b"d"):
        db[key] = b"v-" + key
    store = SimpleNamespace(
        _db_for_partition={0: db}.__getitem__, use_rocksdict=True, offset_key=offset_key
    )
    table = SimpleNamespace(data=store)
    try:
        assert stored(table, 0, None, 2, 1000) == ([(b"a", b"v-a"), (b"b", b"v-b")], False)
        assert stored(table, 0, b"b", 10, 1000) == ([(b"c", b"v-c"), (b"d", b"v-d")], True)
        assert stored(table, 0, b"d", 10, 1000) == ([], True)
        # at most max_bytes of values (the entry that passes it is the last)
        assert [key for key, _ in stored(table, 0, None, 10, 4)[0]] == [b"a", b"b"]
        assert stored(SimpleNamespace(data={}), 0, None, 10, 1000) == ([], True)  # memory://
    finally:
        db.close()


def test_a_peek_gives_what_an_update_would_and_changes_nothing(table):
    windows = ShardWindows(0, base=-1, cache_size=100)
    for i in range(5):
        windows.update("k", 100.0 + i, {"0": 1.0})
    land(windows.begin(4)[0])
    windows.committed(4, {})
    cached = orjson.dumps(windows.cache)
    peeked, updated = {"0": 2.0}, {"0": 2.0}
    flags = windows.peek("k", 110.0, peeked)
    assert orjson.dumps(windows.cache) == cached and windows.clean == {}
    assert flags == windows.update("k", 110.0, updated) and peeked == updated
    # a key that left the cache: read from the table, not put back
    fresh = ShardWindows(0, base=4, cache_size=100)
    x = {"0": 2.0}
    fresh.peek("k", 110.0, x)
    assert x == updated and fresh.cache == {} and fresh.clean == {}
