"""ShardWindows: what a checkpoint writes, and what a new owner reads back after a crash."""

import orjson
import pytest

import tables.windows as windows_module
from tables.direct import to_changelog, to_store
from tables.windows import RECIPE, ShardWindows
from tests.unit.fakes import FakeOutbox, fake_table


@pytest.fixture
def table(monkeypatch):
    """The key-windows store as a plain dict, and its changelog as a list (no Kafka, no Faust)."""
    table = fake_table("key-windows")
    monkeypatch.setattr(windows_module, "key_windows", table)
    return table.data


def land(values):
    """What a checkpoint does with its window values (tables/live_shard.py): store and changelog."""
    to_store(windows_module.key_windows, 0, values)
    to_changelog(windows_module.key_windows, 0, values, FakeOutbox())


def count(windows, key, ts):
    """The tumbling count an event of ``key`` at ``ts`` gets (today's recipe)."""
    x = {"a": 1.0}
    windows.update(key, ts, x)
    return x[f"count_{RECIPE.arithmetic.names[0]}"]


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
    tumbling = RECIPE.arithmetic.names[0]
    assert (x[f"count_{tumbling}"], x[f"a_sum_{tumbling}"], x["secs_since_last"]) == (3, 3.0, 10.0)
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
    from app.feature_spec import parse
    from app.recipe import STATE_RESET, Recipe

    spec = parse(
        {"w": {"kind": "sliding", "size": 60}},
        [{"fields": ["a"], "aggregations": ["count", "max"], "windows": ["w"]}],
        "test",
    )
    declared = Recipe.build(spec, window=3600, hop_window=3600, hop_step=600, expires=7200)
    fixed = ShardWindows(0, base=-1, cache_size=100)  # today's recipe
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
    # a value stored before fingerprints (no "r") was made by the fixed recipe
    del legacy["r"]
    table["k"] = orjson.dumps(legacy)
    assert count(ShardWindows(0, base=0, cache_size=100), "k", 20.0) == 2
    assert (
        ShardWindows(0, base=0, cache_size=100, recipe=declared).update("k", 20.0, {})
        == STATE_RESET
    )
