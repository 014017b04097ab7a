"""One model shard this worker owns: everything the worker knows of it, in one object.

A :class:`LiveShard` holds the shard's live models (``app.models.shard.ShardModels``), the windows
of its keys (``tables.windows.ShardWindows``), whether the engine reads its events and how far
behind it is, the ``scoring`` messages (joined labels) it took but may not acknowledge yet, its
checkpoint state and its lock. ``agents/shards.py`` creates one when the shard is assigned and drops
it in one call when it is revoked; the engine and the learner ask it (:meth:`LiveShard.took`,
:meth:`LiveShard.first_copy`, :meth:`LiveShard.count_flags`, ...) rather than read its fields.
What it needs of Faust's consumer comes through a :class:`Consumer` (``agents/shards.py``).

Checkpoints: pickling a River model per event would cost more than learning it, so a shard's
checkpoint (tables/checkpoints.py) is written every ``STREAMLEARN_CHECKPOINT_EVERY`` events or
``STREAMLEARN_CHECKPOINT_SECONDS`` seconds, at once when a rebalance starts, and when the worker
stops. Before a checkpoint is sent, the output of the events it covers (predictions, parked
features, dead letters, window values) is flushed to Kafka; the ``scoring`` messages it covers
are acknowledged to Faust only once it is written, so Kafka's committed offset never passes the
checkpoint: after a crash the shard replays exactly what its models had not learned.

With STREAMLEARN_PROCESSING_GUARANTEE=exactly_once (``ShardTables.exactly_once``) the shard
writes through its own transactional outbox (``own_outbox``, app/kafka/transaction.py): a
checkpoint puts its window values, versions and itself into the transaction that holds the output
of the events it covers and commits it (:meth:`LiveShard._commit`), and nothing steps the shard
from its snapshot until the next transaction has begun (:attr:`LiveShard.gate`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from app.features.recipe import STATE_RESET, Recipe, flag_counters
from app.models.codec import CheckpointError
from app.models.shard import ShardModels
from tables.anchor import writing_to
from tables.checkpoints import FLUSH_TIMEOUT, Checkpoints
from tables.counters import Counters
from tables.direct import persisted, to_changelog, to_store
from tables.versions import encode, load, stored_versions, version_key
from tables.windows import ShardWindows

log = logging.getLogger(__name__)

#: Checkpoints of a shard are spaced by at least this many times what its last snapshot took
#: (pickling it), so that checkpoints cost a few percent of the worker's time however big the
#: model grows: sending, storing and replicating a checkpoint costs a few times its pickling
#: (a Hoeffding tree of 100k events: about 80 ms to pickle, so one checkpoint per 8 s).
SNAPSHOT_SHARE_INVERSE = 100
#: ... but never by more than this many seconds: the window values changed since the last
#: checkpoint wait in memory for the next one, and a crash replays what came after it.
MAX_CHECKPOINT_SPACING = 30.0


class Consumer(Protocol):
    """What a shard needs of Faust's consumer (``agents/shards.py`` gives it)."""

    def leaving(self) -> bool:
        """Whether a rebalance or the worker's stop is under way."""
        ...

    def forget(self, message: Any) -> None:
        """Stop waiting for ``message``'s acknowledgement (it is read again by the next owner)."""
        ...


@dataclass(frozen=True)
class ShardTables:
    """What every shard of a worker writes to: the checkpoints, the ``key-windows`` table, the
    counters, and the topic whose partition a shard's table writes are placed by (``<id>-scoring``,
    ``tables.anchor.writing_to``)."""

    checkpoints: Checkpoints
    windows: Any
    counters: Counters
    anchor: str
    #: the ``model-versions`` table (tables/versions.py; None: versions are not kept), and how
    #: many versions of each model of a shard it keeps
    versions: Any = None
    keep: int = 10
    #: STREAMLEARN_PROCESSING_GUARANTEE=exactly_once: each shard writes through its own
    #: transactional outbox (``app/kafka/transaction.py``), committed with its checkpoints
    exactly_once: bool = False


class LiveShard:
    """A shard this worker owns: models, windows, reading state, held messages, checkpoints."""

    def __init__(
        self,
        models: ShardModels,
        tables: ShardTables,
        key_cache: int,
        recipe: Recipe,
        consumer: Consumer | None = None,
    ) -> None:
        self.shard = models.shard
        self.models = models
        self.tables = tables
        self.checkpoints = tables.checkpoints
        self.consumer = consumer
        #: windowed activity of the shard's keys, saved with its checkpoints
        self.windows = ShardWindows(
            self.shard, self.events_offset, key_cache, recipe, tables.windows
        )
        #: whether the engine reads the shard's events partition (owned and loaded)
        self.reading = False
        #: events of its partition not read yet, as of the engine's last read (None: unknown)
        self.lag: int | None = None
        #: whether key windows stored by other features were met (said once)
        self.reset_said = False
        #: ``scoring`` messages (Faust events) taken and not acknowledged yet
        self.held: list = []
        #: events the engine stepped since the last checkpoint
        self.taken = 0
        #: ``scoring`` messages skipped since the shard was loaded (taken before a restart)
        self.n_skipped = 0
        #: the ``scoring`` offset covered by the checkpoint in the table
        self.checkpointed = models.offset
        self.last_checkpoint = time.monotonic()
        #: wall-clock time of the last checkpoint this process wrote (None: none yet)
        self.last_checkpoint_wall: float | None = None
        #: when the shard last took a message (to tell a stall behind the end of its partition)
        self.last_taken = time.monotonic()
        #: how long the last snapshot of the shard held the event loop (pickling)
        self.snapshot_seconds = 0.0
        #: the checkpoint being written: (stage, time.monotonic() it began), else None
        self.writing: tuple[str, float] | None = None
        #: the offset a seek was last asked for, how many times, and when
        self.sought: tuple[int, int, float] | None = None
        #: dropped (revoked): a checkpoint in flight must not store what it wrote
        self.dropped = False
        #: one checkpoint of the shard at a time
        self.lock = asyncio.Lock()
        #: a command changed the models since the last checkpoint (one is owed)
        self.commanded = False
        #: exactly_once: the shard's own transactional outbox (None: not opened yet)
        self.own_outbox: Any = None
        #: exactly_once: clear from a checkpoint's snapshot until its transaction is committed;
        #: nothing steps the shard meanwhile (what it wrote would join that transaction)
        self.gate = asyncio.Event()
        self.gate.set()
        #: one opening of its outbox at a time (the engine, the learner, a command)
        self.opening = asyncio.Lock()

    @property
    def outbox(self) -> Any:
        """Where the shard's output goes: its own transactional outbox (exactly_once), else the
        engine's (None: not open, or the engine is not running)."""
        if self.tables.exactly_once:
            return self.own_outbox
        return self.checkpoints.outbox

    def steppable(self) -> bool:
        """Whether the shard may be stepped now: its outbox open, no commit in progress."""
        return self.gate.is_set() and (self.own_outbox is not None or not self.tables.exactly_once)

    @property
    def events_offset(self) -> int:
        """The last offset of the shard's events partition its models took (-1: none)."""
        return self.models.origins.get(f"e{self.shard}", -1)

    # -- events (the engine reads the shard's partition) -------------------------------------

    def took(self, upto: int, n: int) -> None:
        """The engine took ``n`` events, the last at offset ``upto`` of the shard's partition."""
        if n:
            self.models.origins[f"e{self.shard}"] = upto
            self.taken += n
        self.last_taken = time.monotonic()

    def first_copy(self, raw_partition: int, offset: int) -> bool:
        """Whether a re-keyed event from ``offset`` of raw ``raw_partition`` is new; a copy the
        re-key stage sent again after a crash is counted and not taken again."""
        origins = self.models.origins
        name = f"r{raw_partition}"
        if offset <= origins.get(name, -1):
            self.models.n_duplicates += 1
            return False
        origins[name] = offset
        return True

    def count_flags(self, flags: int) -> None:
        """Count what the key windows said of an event (``app.features.recipe``'s flags); call while
        handling an event of the shard (``tables.anchor.writing_to``)."""
        for counter in flag_counters(flags):
            self.tables.counters.count(counter, self.shard)
        if flags & STATE_RESET and not self.reset_said:
            self.reset_said = True
            log.warning(
                "shard %d: key windows stored by other features (the config file's [windows] "
                "and [[aggregate]] changed): each such key starts again at its next event, "
                "counted in windows_reset",
                self.shard,
            )

    def read_to(self, last_offset: int, highwater: int | None) -> None:
        """The engine read up to ``last_offset``; its partition ends at ``highwater``."""
        if highwater is not None:
            self.lag = max(0, highwater - last_offset - 1)

    # -- joined labels (the ``scoring`` partition of the shard) -----------------------------

    def ahead_of(self, offset: int) -> bool:
        """Whether ``offset`` skips past the next ``scoring`` offset the shard needs (a hole).

        Offsets of ``scoring`` are contiguous under at-least-once processing, so a jump means
        messages were not delivered (a fetch from a stale position): they are read again. A
        shard that has taken none takes whatever offset comes first.
        """
        offset_taken = self.models.offset
        if offset_taken < 0:
            return False
        expected = offset_taken + 1
        if offset <= expected:
            return False
        wanted, tries, _ = self.sought or (expected, 0, 0.0)
        if wanted == expected and tries >= 3:
            log.error(
                "shard %d: offsets %d..%d are not in Kafka any more (retention?): going on from %d",
                self.shard,
                expected,
                offset - 1,
                offset,
            )
            return False
        return True

    def should_seek(self) -> bool:
        """Whether to seek back to the next needed offset now (at most once a second)."""
        expected = self.models.offset + 1
        now = time.monotonic()
        wanted, tries, last = self.sought or (expected, 0, 0.0)
        if wanted == expected and now - last < 1.0:
            return False
        tries = tries + 1 if wanted == expected else 1
        if tries % 10 == 0:
            log.error(
                "shard %d: offset %d still not delivered after %d attempts (removed by "
                "retention?); the shard waits for it",
                self.shard,
                expected,
                tries,
            )
        self.sought = (expected, tries, now)
        return True

    def early(self):
        """The topic partition of a held message past a hole, else None."""
        expected = self.models.offset + 1
        for event in self.held:
            if event.message.offset > expected:
                return event.message.tp
        return None

    def hold(self, event) -> None:
        """Keep ``event`` unacknowledged until a checkpoint covers it."""
        self.held.append(event)
        self.last_taken = time.monotonic()

    def stalled(self, highwater: int | None, now: float, after: float = 2.0) -> bool:
        """Whether the shard is behind the end of its ``scoring`` partition and has taken nothing
        lately (Faust can drop re-fetched messages silently: only the partition's end shows it).
        """
        if highwater is None or self.models.offset + 1 >= highwater:
            return False
        return now - self.last_taken >= after

    def covered_by_checkpoint(self, offset: int) -> bool:
        """Whether the checkpoint in the table already covers ``scoring`` ``offset``."""
        return offset <= self.checkpointed

    # -- commands (the control topic) ---------------------------------------------------

    def command(self, command: dict, offset: int) -> dict:
        """Apply a command of the control topic at ``offset`` (a rollback's version read from
        the versions table, signed like checkpoints); the next checkpoint is owed. Returns
        what it did (``app.models.shard.ShardModels.command``)."""
        version = None
        if command.get("action") == "rollback" and command.get("model") in self.models.models:
            version = self.kept_version(command["model"], command.get("version"))
        self.commanded = True
        record = self.models.command(command, offset, version)
        record["events_offset"] = self.events_offset  # (it takes effect from the next event)
        return record

    def kept_version(self, name: str, number: int | None) -> dict | None:
        """Version ``number`` of model ``name`` of this shard, kept in the versions table, or
        (None) the newest taken at a promotion or drift action; None: not kept."""
        table = self.tables.versions
        if table is None:
            return None
        kept = [m for m in stored_versions(table, name) if m["shard"] == self.shard]
        if number is None:
            kept = [m for m in kept if m["reason"].startswith(("promotion", "drift"))]
        else:
            kept = [m for m in kept if m["version"] == number]
        if not kept:
            return None
        meta = max(kept, key=lambda m: m["version"])
        value = table.get(version_key(name, self.shard, meta["version"], self.tables.keep))
        return load(value, self.checkpoints.codec.secret)

    # -- checkpoints ---------------------------------------------------------------------

    def due(self, now: float, every: int, seconds: float, urgent: bool) -> bool:
        """Whether the shard has something not checkpointed and a checkpoint is owed.

        Besides ``urgent`` (a rebalance, shutdown), a checkpoint is owed after ``every`` messages
        or ``seconds``, but never sooner than SNAPSHOT_SHARE_INVERSE times what the last snapshot
        took: snapshots stop the engine while they pickle, and a model that grows (a tree pickles
        to megabytes) must not spend its time being saved.
        """
        if not self.held and not self.taken:
            return False
        if urgent:
            return True
        since = now - self.last_checkpoint
        spacing = self.snapshot_seconds * SNAPSHOT_SHARE_INVERSE
        if since < min(spacing, MAX_CHECKPOINT_SPACING):
            return False
        return len(self.held) + self.taken >= every or since >= seconds

    async def checkpoint(self, wait: bool = False) -> None:
        """Write the shard's checkpoint, then acknowledge the messages it covers.

        One checkpoint of a shard at a time: a shard being checkpointed is skipped, or with
        ``wait`` (a revocation, the worker stopping) waited for, and then checkpointed again if
        it still owes one.
        """
        if self.lock.locked() and not wait:
            return
        async with self.lock:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        taken = self.taken
        if self.dropped or not (self.held or taken or self.commanded):
            return
        if self.checkpoints.outbox is None or self.outbox is None:
            # the engine is not running (yet, or any more): its outbox may hold output not
            # sent, so nothing is checkpointed past it; what is not covered is replayed
            # (exactly_once: the shard's own outbox is not open, so nothing was stepped)
            return
        covered = self.models.offset
        if covered != self.checkpointed or taken or self.commanded:
            self.commanded = False
            self.writing = ("starting", time.monotonic())
            try:
                await self._write(covered, taken)
            finally:
                self.writing = None
            if self.dropped:
                return  # revoked while it was written
            self.models.record_history(time.time())
        self.last_checkpoint = time.monotonic()
        self.last_checkpoint_wall = time.time()
        self._ack_covered(covered)

    async def _write(self, covered: int, taken: int) -> None:
        # The snapshot (models and windows) is taken here, without awaiting: the engine goes on
        # stepping the shard while the checkpoint is written; what it takes meanwhile goes into
        # the next checkpoint.
        checkpoints = self.checkpoints
        if checkpoints.lost is not None:  # no checkpoint of this process may cover that output
            raise checkpoints.lost
        if self.tables.exactly_once:
            await self._commit(covered, taken)
            return
        shard, out = self.shard, checkpoints.outbox
        self._stage("snapshot")
        raw, upto, values, started, taken_versions = self._begin()
        try:
            self._stand_on(values, taken_versions, out)
            # the output of the covered events and the window values, in Kafka before the
            # checkpoint that stands on them
            self._stage("flushing output")
            await checkpoints.flush(shard, FLUSH_TIMEOUT)
            if values:
                persisted(self.tables.windows, shard, out)
            if self.dropped:
                return  # revoked meanwhile: the new owner starts from the last checkpoint
            if checkpoints.lost is not None:  # another shard found output lost meanwhile
                raise checkpoints.lost
            self._stage("writing checkpoint")
            checkpoint = {shard: raw}
            to_changelog(checkpoints.table, shard, checkpoint, out)
            # in Kafka before the next checkpoint writes window values ahead of it (an error:
            # whether the checkpoint landed is unknown, so the worker stops too)
            await checkpoints.flush(shard)
        except BaseException:
            self._undo(started, taken_versions)
            raise
        if self.dropped:
            return  # revoked while it was sent: the new owner reads it from the changelog
        to_store(checkpoints.table, shard, checkpoint)
        persisted(checkpoints.table, shard, out)
        self._committed(covered, taken, upto, values)

    async def _commit(self, covered: int, taken: int) -> None:
        """exactly_once: the checkpoint, its window values and versions join the transaction
        that holds the output of the events it covers, and it is committed; nothing steps the
        shard from the snapshot until the next transaction begins. A transaction that cannot
        commit stops the worker (``OutputLost``): its messages are never seen, and the next
        owner learns those events again from the last committed checkpoint."""
        checkpoints, shard, out = self.checkpoints, self.shard, self.own_outbox
        self._stage("snapshot")
        self.gate.clear()  # (from the snapshot on: what is stepped now is the next checkpoint's)
        try:
            raw, upto, values, started, taken_versions = self._begin()
            try:
                self._stand_on(values, taken_versions, out)
                checkpoint = {shard: raw}
                to_changelog(checkpoints.table, shard, checkpoint, out)
                self._stage("committing")
                await out.commit()
            except BaseException as exc:
                self._undo(started, taken_versions)
                if isinstance(exc, Exception) and not isinstance(exc, CheckpointError):
                    raise checkpoints.output_lost(shard, exc) from exc
                raise
        finally:
            self.gate.set()
        if values:
            persisted(self.tables.windows, shard, out)
        if self.dropped:
            return  # revoked while it was committed: the new owner reads it from the changelog
        to_store(checkpoints.table, shard, checkpoint)
        persisted(checkpoints.table, shard, out)
        self._committed(covered, taken, upto, values)

    def _begin(self) -> tuple[bytes, int, dict, Any, list]:
        """What a checkpoint takes, without awaiting: the models' snapshot, the offset it covers,
        the window values changed since the last one (and the mark :meth:`_undo` takes them
        back to), the model versions pending."""
        raw = self._snapshot()
        upto = self.events_offset
        values, started = self.windows.begin(upto)
        return raw, upto, values, started, self.models.take_pending_versions()

    def _stand_on(self, values: dict, taken_versions: list, out: Any) -> None:
        """Write what the checkpoint stands on: its model versions and its window values."""
        self._versions(taken_versions)
        self._windows(values, out)

    def _undo(self, started: Any, taken_versions: list) -> None:
        """A checkpoint that failed: its window values and versions go with the next one."""
        self.windows.abort(started)
        self.models.pending_versions[:0] = taken_versions

    def _snapshot(self) -> bytes:
        """The models, pickled and signed (a ``CheckpointError`` when too big for Kafka)."""
        checkpoints = self.checkpoints
        started_at = time.perf_counter()
        raw = checkpoints.codec.dumps(self.models.snapshot())
        # the model's pickling only: window values cost in proportion to the keys changed since
        # the last checkpoint, so spacing checkpoints by them would make the next one bigger
        self.snapshot_seconds = time.perf_counter() - started_at
        if len(raw) > checkpoints.max_bytes:
            raise CheckpointError(
                f"shard {self.shard}: the checkpoint is {len(raw) / 2**20:.1f} MiB, more than "
                f"STREAMLEARN_CHECKPOINT_MAX_BYTES ({checkpoints.max_bytes / 2**20:.0f} "
                "MiB): the models keep learning but cannot be saved. Raise the setting (on a "
                "new STREAMLEARN_ID, whose topics are created for it), or bound the model's size."
            )
        return raw

    def _windows(self, values: dict, out: Any) -> None:
        """Write the window ``values`` a checkpoint stands on to the store and to ``out``."""
        if values:
            to_store(self.tables.windows, self.shard, values)
            to_changelog(self.tables.windows, self.shard, values, out)

    def _versions(self, taken_versions: list) -> None:
        """Write ``taken_versions`` to the ``model-versions`` table (store and changelog)."""
        if not taken_versions or self.tables.versions is None:
            return
        shard, secret = self.shard, self.checkpoints.codec.secret
        kept = {
            version_key(meta["name"], shard, meta["version"], self.tables.keep): encode(
                meta, payload, secret
            )
            for meta, payload in taken_versions
        }
        to_store(self.tables.versions, shard, kept)
        to_changelog(self.tables.versions, shard, kept, self.outbox)

    def _committed(self, covered: int, taken: int, upto: int, values: dict) -> None:
        """The checkpoint covering ``covered`` (``taken`` events, up to events offset
        ``upto``, with window ``values``) is in Kafka."""
        self.windows.committed(upto, values)
        forgotten = sum(1 for value in values.values() if value is None)
        if forgotten:  # idle keys deleted from the store (tables/windows.py)
            with writing_to(self.shard, self.tables.anchor):
                self.tables.counters.count("keys_forgotten", self.shard, forgotten)
        self.checkpointed = covered
        self.taken -= taken

    def _stage(self, stage: str) -> None:
        self.writing = (stage, self.writing[1] if self.writing else time.monotonic())

    def _ack_covered(self, covered: int) -> None:
        ahead = [event for event in self.held if event.message.offset > covered]
        for event in self.held:
            if event.message.offset <= covered:
                event.ack()
        if ahead and self.consumer is not None and self.consumer.leaving():
            # Never acknowledged (Kafka's commit must not pass the hole before them), but no
            # longer awaited either: the next owner reads them again.
            for event in ahead:
                self.consumer.forget(event.message)
            ahead = []
        self.held[:] = ahead

    def drop(self) -> None:
        """Forget the shard (revoked): its checkpoint is in the table."""
        self.reading = False
        self.lag = None
        if self.held:
            log.warning(
                "shard %d revoked with %d messages not checkpointed: the next owner "
                "learns them again from Kafka",
                self.shard,
                len(self.held),
            )
        self.dropped = True
