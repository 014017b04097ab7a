"""Per-key windowed activity of the batch engine, exactly once through crashes.

Key: entity key. Value: bytes, ``orjson`` of
``{"u": U, "s": state, "pu": E, "ps": previous, "r": the recipe's fingerprint}`` (a state of
:mod:`app.features.aggregates`; the default spec's in the layout of :mod:`app.features.windows`):
the key's state after every events offset <= U of its shard, and, for a crash before the checkpoint
at U was written, its state at the checkpoint before (offset E). Values are written only by a
checkpoint, after the model snapshot at U is taken and before the checkpoint itself; each checkpoint
is flushed before the next one writes values. On restore with checkpoint offset C, a value with
``u <= C`` gives ``s``, else ``ps`` (then E = C), so the windows restart exactly at the
checkpoint and the replay counts each event once. A value whose ``r`` is not the running
recipe's (the features changed) is not read: the key starts again; one without ``r`` (written
before fingerprints, by the fixed recipe) is read by the default spec's (``Recipe.made_by``).

Deleting: a key idle long enough (``Recipe.forgettable``) is deleted from the store and its
changelog (a tombstone) by a checkpoint: found when it leaves the cache, or, for a key that left
the cache before it was idle that long, by the sweep (:meth:`ShardWindows.sweep`), which reads
the shard's stored keys a batch per checkpoint. Without it, keys that come and go (cards,
sessions) would fill the disk and the changelog.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson

from app import compat
from app.config import Config
from app.features.recipe import STATE_RESET, Recipe
from tables.direct import stored

#: RocksDB's memory for this table (Faust's defaults allow a 2 GiB block cache and 3 x 64 MiB
#: write buffers per partition): keys far outnumber what needs to stay in memory, and the hot
#: ones are in the engine's own cache already.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 32 * 1024 * 1024,
    "block_cache_compressed_size": 8 * 1024 * 1024,
}


def windows_table(app: faust.App, config: Config) -> Any:
    """The ``key-windows`` table of ``app``: each key's windows (str to orjson bytes)."""
    return app.Table(
        "key-windows",
        value_type=bytes,
        default=None,
        options=dict(ROCKSDB_OPTIONS),
        # a busy key's sliding window keeps every event of size + WINDOW_EXPIRES, twice (s, ps):
        # let its changelog take values as large as a checkpoint (Kafka's default is 1 MB)
        extra_topic_configs={"max.message.bytes": str(config.checkpoint_max_bytes + 1024 * 1024)},
        help="Windowed activity per entity key (str to orjson bytes, see tables/windows.py).",
    )


log = logging.getLogger(__name__)

_MISSING = object()

#: stored keys the sweep reads per checkpoint, and the most bytes of their values (they are
#: parsed: keep it a few ms, and a batch of big sliding windows from taking much memory)
SWEEP_KEYS = 2000
SWEEP_BYTES = 8 * 1024 * 1024
#: a new pass of the sweep starts once the shard's event time moved this share of
#: ``WINDOW_EXPIRES`` since the last pass started (a key becomes forgettable only as it moves)
SWEEP_AFTER = 0.25


def window_state(table: Any, key: str, recipe: Recipe) -> dict | None:
    """``key``'s latest window state in ``table``'s local store (None: none), for the web
    view."""
    raw = table.get(key)
    if raw is None:
        return None
    value = orjson.loads(raw)
    if not recipe.made_by(value.get("r")):
        return None
    return value["s"] if value["s"] is not None else value["ps"]


class ShardWindows:
    """The window states of one shard's keys: a bounded cache in front of ``table`` (the
    ``key-windows`` table, :func:`windows_table`).

    ``tables/live_shard.py`` writes the changed values with each checkpoint.
    """

    def __init__(self, shard: int, base: int, cache_size: int, recipe: Recipe, table: Any) -> None:
        self.shard = shard
        self.table = table
        self.recipe = recipe
        #: the events offset of the checkpoint the stored values are read against
        self.base = base
        self.cache_size = cache_size
        self.cache: dict[str, dict] = {}
        #: keys changed since the last checkpoint began, with their state at that moment
        self.clean: dict[str, dict | None] = {}
        #: expired keys to delete with the next checkpoint
        self.expired: set[str] = set()
        #: latest event time of the shard (for expiry)
        self.now = 0.0
        #: whether the last state read from the table was stored by other features
        self.reset = False
        #: the sweep: the encoded key it goes on after (None: a pass starts from the first),
        #: and the shard's event time when its last pass started (None: none yet)
        self.sweep_after: bytes | None = None
        self.sweep_started: float | None = None
        #: entries the sweep could not read (kept)
        self.unreadable = 0

    def peek(self, key: str, ts: float, x: dict) -> int:
        """Add to ``x`` the windowed features an event of ``key`` at ``ts`` would get now, as
        :meth:`update` would, changing nothing (a score on request); the recipe's flags."""
        state = self.cache.get(key, _MISSING)
        if state is _MISSING:
            state = self._stored(key)
        _, flags = self.recipe.step(self.recipe.copy(state) if state is not None else None, ts, x)
        return flags

    def _stored(self, key: str) -> dict | None:
        """``key``'s state in the table as of the checkpoint it is read against, if the running
        recipe made it (None: none)."""
        raw = self.table.get(key)
        if raw is None:
            return None
        value = orjson.loads(raw)
        return self._as_of_base(value) if self.recipe.made_by(value.get("r")) else None

    def _load(self, key: str) -> dict | None:
        raw = self.table.get(key)
        if raw is None:
            return None
        value = orjson.loads(raw)
        if not self.recipe.made_by(value.get("r")):
            self.reset = True  # stored by other features: the key starts again
            return None
        return self._as_of_base(value)

    def _as_of_base(self, value: dict) -> dict | None:
        """A stored value's state as of the checkpoint the table is read against: ``s`` if
        that checkpoint covers it, else the fallback ``ps`` (see the module's docstring)."""
        return value["s"] if value["u"] <= self.base else value["ps"]

    def update(self, key: str, ts: float, x: dict) -> int:
        """Count an event of ``key`` at ``ts`` with features ``x`` and add its windowed
        features to ``x``; the recipe's flags (``app.features.recipe.TOO_LATE``, ...)."""
        state = self.cache.pop(key, _MISSING)
        reset = 0
        if state is _MISSING:
            state = self._load(key)
            if self.reset:
                self.reset = False
                reset = STATE_RESET
        if key not in self.clean:  # first change since the last checkpoint began: keep a copy
            self.clean[key] = self.recipe.copy(state) if state is not None else None
            self.expired.discard(key)
        state, flags = self.recipe.step(state, ts, x)
        self.cache[key] = state  # (re-)inserted last: the cache evicts the least recently used
        if ts > self.now:
            self.now = ts
        return flags | reset

    def begin(self, upto: int) -> tuple[dict[str, bytes | None], dict]:
        """Start a checkpoint at events offset ``upto``: the table values it must write (None:
        delete), and what :meth:`abort` needs. Events taken from now on belong to the next one.
        """
        made_by = self.recipe.fingerprint
        values: dict[str, bytes | None] = {
            key: orjson.dumps(
                {"u": upto, "s": self.cache[key], "pu": self.base, "ps": before, "r": made_by}
            )
            for key, before in self.clean.items()
        }
        for key in self.expired:
            values.setdefault(key, None)
        started, self.clean = self.clean, {}
        return values, started

    def abort(self, started: dict) -> None:
        """The checkpoint begun with ``started`` failed: its keys still fall back to their
        state at the last checkpoint written."""
        self.clean.update(started)

    def committed(self, upto: int, written: dict) -> None:
        """The checkpoint at ``upto`` is written: read the table against it, trim the cache."""
        self.expired.difference_update(written)
        self.base = upto
        excess = len(self.cache) - self.cache_size
        if excess > 0:
            for key in list(self.cache)[:excess]:
                if key in self.clean:
                    continue  # changed since: written by the next checkpoint
                if self.recipe.forgettable(self.cache.pop(key), self.now):
                    self.expired.add(key)
        self.sweep()

    def sweep(self, limit: int = SWEEP_KEYS) -> None:
        """Read the next ``limit`` keys (``SWEEP_BYTES`` at most) of the shard's store; mark for
        deletion with the next checkpoint each one not in memory whose state is forgettable at
        the shard's event time (:meth:`_idle`). A pass over the whole store starts once the
        shard's time moved ``SWEEP_AFTER * expires`` since the last."""
        if self.sweep_after is None:  # between passes
            started = self.sweep_started
            if self.now <= 0 or (
                started is not None and self.now - started < SWEEP_AFTER * self.recipe.expires
            ):
                return
            self.sweep_started = self.now
        entries, done = stored(self.table, self.shard, self.sweep_after, limit, SWEEP_BYTES)
        self.sweep_after = None if done or not entries else entries[-1][0]
        store = self.table.data
        busy = (self.cache, self.clean, self.expired)
        for raw_key, raw_value in entries:
            try:
                key = compat.decode_key(store, raw_key)
                if any(key in keys for keys in busy):
                    continue  # in memory: the cache decides
                forget = self._idle(orjson.loads(compat.decode_value(store, raw_value)))
            except Exception:  # noqa: BLE001 - not a value of ours: left alone, said once
                if not self.unreadable:
                    log.warning(
                        "shard %d: a key-windows entry the sweep cannot read: kept",
                        self.shard,
                        exc_info=True,
                    )
                self.unreadable += 1
                continue
            if forget:
                self.expired.add(key)

    def _idle(self, value: dict) -> bool:
        """Whether a stored value's state is forgettable at the shard's time. A state of other
        features too (it would not be read), but only once idle as long: until then its key's
        next event counts in ``windows_reset``."""
        if self.recipe.made_by(value.get("r")):
            state = self._as_of_base(value)
        else:
            state = value.get("s")
        if not isinstance(state, dict) or not isinstance(state.get("t"), int | float):
            return False  # (none as of the checkpoint read against: the replay makes it)
        return self.recipe.forgettable(state, self.now)
