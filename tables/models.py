"""Model checkpoints, one entry per model shard (= partition of the ``scoring`` topic).

Key: shard number. Value: bytes: :meth:`app.shard.ShardModels.snapshot` (every model of the shard,
its metrics and counters, and ``offset``: the last ``scoring`` offset it covers), signed and
pickled by ``app.codec.RiverCodec``. The table stores raw bytes so that Faust's recovery never
unpickles anything: a checkpoint is verified and decoded here, and one that fails stops the
worker with the reason instead of being replaced by a fresh model.

The learner keeps the live models of the shards this worker owns in :data:`live_shards`, a cache
in front of the table: pickling a River model per event would cost more than learning it, so the
table is written every ``STREAMLEARN_CHECKPOINT_EVERY`` messages or
``STREAMLEARN_CHECKPOINT_SECONDS`` seconds, and at once when a rebalance starts. The messages a
checkpoint covers are acknowledged to Faust only when it is written, so Kafka's committed offset
never passes the checkpoint: after a crash the learner replays exactly what the model had not
learned, and skips (``offset <= checkpoint offset``) what it had.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time

from app import app, settings
from app.codec import CheckpointError, RiverCodec
from app.model_spec import parse_specs
from app.outbox import FlushTimeout, Outbox, delivery_error
from app.shard import ShardModels
from app.topics import scoring
from tables.direct import persisted, to_changelog, to_store
from tables.windows import ShardWindows, key_windows

log = logging.getLogger(__name__)

#: Checkpoints of a shard are spaced by at least this many times what its last snapshot took
#: (pickling it), so that checkpoints cost a few percent of the worker's time however big the
#: model grows: sending, storing and replicating a checkpoint costs a few times its pickling
#: (a Hoeffding tree of 100k events: about 80 ms to pickle, so one checkpoint per 8 s).
SNAPSHOT_SHARE_INVERSE = 100
#: ... but never by more than this many seconds: the window values changed since the last
#: checkpoint wait in memory for the next one, and a crash replays what came after it.
MAX_CHECKPOINT_SPACING = 30.0


class OutputLost(CheckpointError):
    """Kafka refused (or timed out) the output of events a checkpoint would cover."""


#: A checkpoint fails (and is tried again) when Kafka has not acknowledged the output it covers
#: within this many seconds, instead of holding the shard's next checkpoints back unseen.
FLUSH_TIMEOUT = 60.0


shard_checkpoints = app.Table(
    "shard-checkpoints",
    value_type=bytes,  # signed pickles, decoded here (never by Faust's recovery)
    default=None,
    # one message per checkpoint: let the changelog take what the producer may send
    extra_topic_configs={"max.message.bytes": str(settings.checkpoint_max_bytes + 1024 * 1024)},
    help="Latest checkpoint of each model shard (int to signed pickle).",
)


class LiveShards:
    """The live models of the shards this worker owns, and the messages not yet checkpointed."""

    def __init__(self, spec_text: str, every: int, seconds: float, secret: str) -> None:
        self.specs = parse_specs(spec_text)
        self.codec = RiverCodec(secret)
        self.every = every
        self.seconds = seconds
        self.shards: dict[int, ShardModels] = {}
        self.held: dict[int, list] = {}
        #: events the engine stepped into each shard since its last checkpoint
        self.taken: dict[int, int] = {}
        #: windowed activity of each shard's keys (batch engine), saved with its checkpoints
        self.windows: dict[int, ShardWindows] = {}
        #: where checkpoints and window values go to their changelogs: the engine's outbox
        #: (None while the engine is not running)
        self.outbox: Outbox | None = None
        #: checkpoints' outbox over Faust's producer, when there is no engine
        self.own_outbox: Outbox | None = None
        #: per shard, what the agents sent for messages it took since its last checkpoint
        #: (Faust's FutureMessages): Kafka must have them all before that checkpoint is written
        self.agent_output: dict[int, list[asyncio.Future]] = {}
        #: shards whose agent is between a message's step and its output's sends
        self.stepping: set[int] = set()
        self.last_checkpoint: dict[int, float] = {}
        self.last_checkpoint_wall: dict[int, float] = {}
        #: the offset covered by the checkpoint in the table, per shard
        self.checkpointed: dict[int, int] = {}
        #: shards whose checkpoint is being written: (stage, time.monotonic() it began)
        self.writing: dict[int, tuple[str, float]] = {}
        #: set once Kafka refused output of taken events: no checkpoint is written after it
        self.lost: OutputLost | None = None
        #: one checkpoint of a shard at a time
        self.locks: dict[int, asyncio.Lock] = {}
        #: when each shard last took a message (to tell a stall behind the end of its partition)
        self.last_taken: dict[int, float] = {}
        #: how long the last snapshot of each shard held the event loop (pickle and windows)
        self.snapshot_seconds: dict[int, float] = {}
        self.n_restored = 0
        self.n_skipped = 0
        self.n_reread = 0
        #: per shard: the offset a seek was last asked for, how many times, and when
        self.sought: dict[int, tuple[int, int, float]] = {}
        self.strict_offsets = settings.processing_guarantee == "at_least_once"

    def get(self, shard: int) -> ShardModels:
        """The live models of ``shard``: in memory, else from its checkpoint, else fresh."""
        models = self.shards.get(shard)
        if models is None:
            raw = shard_checkpoints.get(shard)
            if raw is None:
                models = ShardModels.fresh(shard, self.specs)
                log.info("shard %d: no checkpoint, starting fresh models", shard)
            else:
                models = self._restore(shard, raw)
                self.n_restored += 1
                log.info("shard %d: restored checkpoint at offset %d", shard, models.offset)
            self.shards[shard] = models
            self.checkpointed[shard] = models.offset
            self.held[shard] = []
            self.taken[shard] = 0
            self.windows[shard] = ShardWindows(
                shard, models.origins.get(f"e{shard}", -1), settings.key_cache
            )
            self.last_checkpoint[shard] = time.monotonic()
            self.last_taken[shard] = time.monotonic()
        return models

    def _restore(self, shard: int, raw: bytes) -> ShardModels:
        try:
            return ShardModels.restore(shard, self.specs, self.codec.loads(raw))
        except (
            CheckpointError,
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            KeyError,
            TypeError,
        ) as exc:
            raise CheckpointError(
                f"the checkpoint of shard {shard} (table {shard_checkpoints.name!r}) cannot be "
                f"used: {exc!r}. Refusing to replace a trained model with a fresh one: check "
                "STREAMLEARN_CHECKPOINT_SECRET, or start over under a new STREAMLEARN_ID."
            ) from exc

    def ahead_of(self, shard: int, offset: int) -> bool:
        """Whether ``offset`` skips past the next offset ``shard`` needs (a hole in delivery).

        Offsets of the ``scoring`` topic are contiguous under at-least-once processing, so a jump
        means messages were not delivered (a fetch from a stale position): they are read again.
        A fresh shard takes whatever offset comes first; under exactly-once processing Kafka's
        transaction markers take offsets, so no check is made there.
        """
        models = self.shards[shard]
        if not self.strict_offsets or models.offset < 0:  # offset < 0: nothing taken yet
            return False
        expected = models.offset + 1
        if offset <= expected:
            return False
        wanted, tries, _ = self.sought.get(shard, (expected, 0, 0.0))
        if wanted == expected and tries >= 3:
            log.error(
                "shard %d: offsets %d..%d are not in Kafka any more (retention?): going on from %d",
                shard,
                expected,
                offset - 1,
                offset,
            )
            return False
        return True

    def should_seek(self, shard: int) -> bool:
        """Whether to seek back to the next needed offset now (at most once a second)."""
        expected = self.shards[shard].offset + 1
        now = time.monotonic()
        wanted, tries, last = self.sought.get(shard, (expected, 0, 0.0))
        if wanted == expected and now - last < 1.0:
            return False
        tries = tries + 1 if wanted == expected else 1
        if tries % 10 == 0:
            log.error(
                "shard %d: offset %d still not delivered after %d attempts (removed by "
                "retention?); the shard waits for it",
                shard,
                expected,
                tries,
            )
        self.sought[shard] = (expected, tries, now)
        self.n_reread += 1
        return True

    def waiting_for_holes(self) -> list[tuple[int, object]]:
        """``(shard, topic-partition)`` of shards holding messages past a hole."""
        out = []
        for shard, held in self.held.items():
            models = self.shards.get(shard)
            early = [e for e in held if e.message.offset > models.offset + 1] if models else []
            if early:
                out.append((shard, early[0].message.tp))
        return out

    def sent(self, shard: int, message: asyncio.Future) -> None:
        """``message`` (an agent's send) is output of a message ``shard`` took: its checkpoint
        waits until Kafka has it, and a delivery error stops the worker (see :meth:`_write`)."""
        self.agent_output.setdefault(shard, []).append(message)

    def hold(self, shard: int, event) -> None:
        """Keep ``event`` unacknowledged until a checkpoint covers it."""
        self.held[shard].append(event)
        self.last_taken[shard] = time.monotonic()

    def stalled(self, shard: int, highwater: int | None, now: float, after: float = 2.0) -> bool:
        """Whether ``shard`` is behind the end of its partition and has taken nothing lately.

        Faust can drop re-fetched messages silently (its read offset ran ahead); then no early
        message arrives to reveal the hole, and only the partition's end shows it.
        """
        models = self.shards.get(shard)
        if models is None or highwater is None or models.offset + 1 >= highwater:
            return False
        return now - self.last_taken.get(shard, now) >= after

    def due(self, shard: int, now: float) -> bool:
        """Whether ``shard`` has waiting messages and a checkpoint is owed.

        Besides a rebalance and shutdown, a checkpoint is owed after ``every`` messages or
        ``seconds``, but never sooner than SNAPSHOT_SHARE_INVERSE times what the last snapshot of
        the shard took (``snapshot_seconds``): snapshots stop the engine while they pickle, and a
        model that grows (a tree pickles to megabytes) must not spend its time being saved.
        """
        held = self.held.get(shard)
        taken = self.taken.get(shard, 0)
        if not held and not taken:
            return False
        if app.rebalancing or app.should_stop:
            return True
        since = now - self.last_checkpoint[shard]
        spacing = self.snapshot_seconds.get(shard, 0.0) * SNAPSHOT_SHARE_INVERSE
        if since < min(spacing, MAX_CHECKPOINT_SPACING):
            return False
        return len(held) + taken >= self.every or since >= self.seconds

    async def checkpoint(self, shard: int, wait: bool = False) -> None:
        """Write ``shard``'s checkpoint, then acknowledge the messages it covers.

        The snapshot is pickled first (the state it covers), then every producer is flushed so
        that the predictions, parked features and window values of those messages are in Kafka
        before the checkpoint that skips them on a replay; then the checkpoint is sent, and once
        Kafka has acknowledged it, stored and the covered messages acknowledged.

        One checkpoint of a shard at a time: a shard being checkpointed is skipped, or with
        ``wait`` (a revocation, the engine stopping) waited for, and then checkpointed again if
        it still owes one. :meth:`slow_checkpoints` tells one that waits.
        """
        lock = self.locks.get(shard)
        if lock is None:
            lock = self.locks[shard] = asyncio.Lock()
        if lock.locked() and not wait:
            return
        async with lock:
            await self._checkpoint(shard)

    async def _checkpoint(self, shard: int) -> None:
        held = self.held.get(shard)
        models = self.shards.get(shard)
        taken = self.taken.get(shard, 0)
        if models is None or not (held or taken) or shard in self.stepping:
            return  # (stepping: the learner's next message, or the checkpoint loop, writes it)
        if self.outbox is None and settings.engine == "batch":
            # the engine is not running (yet, or any more): its outbox may hold output not
            # sent, so nothing is checkpointed past it; what is not covered is replayed
            return
        covered = models.offset
        if covered != self.checkpointed.get(shard) or taken:
            self.writing[shard] = ("starting", time.monotonic())
            try:
                await self._write(shard, models, covered, taken)
            finally:
                self.writing.pop(shard, None)
            if self.shards.get(shard) is not models:
                return  # revoked while it was written (and forgotten)
            models.record_history(time.time())
        self.last_checkpoint[shard] = time.monotonic()
        self.last_checkpoint_wall[shard] = time.time()
        self._ack_covered(shard, covered)

    async def _write(self, shard: int, models: ShardModels, covered: int, taken: int) -> None:
        # The snapshot (model and windows) is taken here, without awaiting: the engine goes on
        # stepping the shard while the checkpoint is written; what it takes meanwhile goes into
        # the next checkpoint.
        if self.lost is not None:  # no checkpoint of this process may cover that output now
            raise self.lost
        self._stage(shard, "snapshot")
        started_at = time.perf_counter()
        raw = self.codec.dumps(models.snapshot())
        # the model's pickling only: window values cost in proportion to the keys changed since
        # the last checkpoint, so spacing checkpoints by them would make the next one bigger
        self.snapshot_seconds[shard] = time.perf_counter() - started_at
        if len(raw) > settings.checkpoint_max_bytes:
            raise CheckpointError(
                f"shard {shard}: the checkpoint is {len(raw) / 2**20:.1f} MiB, more than "
                f"STREAMLEARN_CHECKPOINT_MAX_BYTES ({settings.checkpoint_max_bytes / 2**20:.0f} "
                "MiB): the models keep learning but cannot be saved. Raise the setting (on a "
                "new STREAMLEARN_ID, whose topics are created for it), or bound the model's size."
            )
        out = self._checkpoint_outbox()
        windows = self.windows[shard]
        upto = models.origins.get(f"e{shard}", -1)
        values, started = windows.begin(upto)
        sent = self.agent_output.pop(shard, [])  # the agents' output of what the snapshot covers
        try:
            if values:
                to_store(key_windows, shard, values)
                to_changelog(key_windows, shard, values, out)
            # the output of the covered events and the window values, in Kafka before the
            # checkpoint that stands on them
            self._stage(shard, "flushing output")
            await app.producer.flush()  # (the agents' output)
            await self._confirm(shard, sent, FLUSH_TIMEOUT)
            await self._flush(shard, out, FLUSH_TIMEOUT)
            if values:
                persisted(key_windows, shard, out)
            if self.shards.get(shard) is not models:
                return  # revoked meanwhile: the new owner starts from the last checkpoint
            if self.lost is not None:  # another shard's checkpoint found output lost meanwhile
                raise self.lost
            self._stage(shard, "writing checkpoint")
            checkpoint = {shard: raw}
            to_changelog(shard_checkpoints, shard, checkpoint, out)
            # in Kafka before the next checkpoint writes window values ahead of it (an error:
            # whether the checkpoint landed is unknown, so the worker stops too)
            await self._flush(shard, out)
        except BaseException:
            windows.abort(started)
            if sent and self.shards.get(shard) is models:  # checked again by the next one
                self.agent_output[shard] = sent + self.agent_output.get(shard, [])
            raise
        if self.shards.get(shard) is not models:
            return  # revoked while it was sent: the new owner reads it from the changelog
        to_store(shard_checkpoints, shard, checkpoint)
        persisted(shard_checkpoints, shard, out)
        windows.committed(upto, values)
        self.checkpointed[shard] = covered
        self.taken[shard] -= taken

    async def _flush(self, shard: int, out: Outbox, timeout: float | None = None) -> None:
        """Flush ``out``: a timeout fails only this checkpoint, any other error is lost output."""
        try:
            await out.flush(timeout)
        except FlushTimeout:
            raise
        except Exception as exc:
            raise self.output_lost(shard, exc) from exc

    async def _confirm(self, shard: int, sent: list[asyncio.Future], timeout: float) -> None:
        """Wait until Kafka has acknowledged every message in ``sent`` (agents' sends):
        a timeout fails only this checkpoint, a delivery error is lost output."""
        if not sent:
            return
        _, pending = await asyncio.wait(sent, timeout=timeout)
        if pending:
            raise FlushTimeout(
                f"{len(pending)} of {len(sent)} messages sent by the agents not acknowledged by "
                f"Kafka after {timeout:.0f} s"
            )
        for message in sent:
            error = delivery_error(message, "a message sent by an agent")
            if error is not None:
                raise self.output_lost(shard, error) from error

    def output_lost(self, shard: int, exc: BaseException) -> OutputLost:
        """Remember that output was lost: no checkpoint of this process may be written now."""
        if self.lost is None:
            self.lost = OutputLost(
                f"Kafka did not take output of the events shard {shard} learned since its last "
                f"checkpoint ({exc!r}), after the producer's own retries: stopping, so that no "
                "checkpoint covers events whose predictions are lost. The next start learns "
                "them again from that checkpoint and writes their output again."
            )
        return self.lost

    def _checkpoint_outbox(self) -> Outbox:
        """Where checkpoints go: the engine's outbox, else (agents) one over Faust's producer."""
        if self.outbox is not None:
            return self.outbox
        if self.own_outbox is None:
            self.own_outbox = Outbox(app.producer._ensure_producer())
        return self.own_outbox

    def _stage(self, shard: int, stage: str) -> None:
        self.writing[shard] = (stage, self.writing[shard][1])

    def slow_checkpoints(self, now: float, after: float) -> list[tuple[int, str, float]]:
        """Checkpoints in progress for ``after`` seconds or more: (shard, stage, seconds)."""
        return [
            (shard, stage, now - since)
            for shard, (stage, since) in self.writing.items()
            if now - since >= after
        ]

    def _ack_covered(self, shard: int, covered: int) -> None:
        held = self.held[shard]
        ahead = [event for event in held if event.message.offset > covered]
        for event in held:
            if event.message.offset <= covered:
                event.ack()
        if ahead and (app.rebalancing or app.should_stop):
            # Never acknowledged (Kafka's commit must not pass the hole before them), but no
            # longer awaited either: the next owner reads them again.
            for event in ahead:
                app.consumer._unacked_messages.discard(event.message)
            ahead = []
        held[:] = ahead

    def covered_by_checkpoint(self, shard: int, offset: int) -> bool:
        """Whether a checkpoint in the table already covers ``offset`` of ``shard``."""
        return offset <= self.checkpointed.get(shard, -1)

    async def checkpoint_due(self) -> None:
        """Checkpoint every shard that owes one."""
        now = time.monotonic()
        for shard in list(self.held):
            if self.due(shard, now):
                await self.checkpoint(shard)

    @staticmethod
    def forget_faust_gaps(tp, covered: int) -> None:
        """Drop Faust's record of offset gaps past ``covered`` for ``tp``.

        Faust marks offsets it saw skipped as done and lets its commit pass them; the learner
        reads them again instead, so the commit must wait for them.
        """
        gaps = app.consumer._gap.get(tp)
        if gaps:
            gaps.chop(covered + 1, 2**62)

    def forget(self, shards: set[int]) -> None:
        """Drop revoked shards from memory (their checkpoint is in the table)."""
        for shard in shards:
            if self.held.get(shard):
                log.warning(
                    "shard %d revoked with %d messages not checkpointed: the next owner "
                    "learns them again from Kafka",
                    shard,
                    len(self.held[shard]),
                )
            self.shards.pop(shard, None)
            self.held.pop(shard, None)
            self.agent_output.pop(shard, None)
            self.taken.pop(shard, None)
            self.windows.pop(shard, None)
            self.last_checkpoint.pop(shard, None)
            self.last_checkpoint_wall.pop(shard, None)
            self.snapshot_seconds.pop(shard, None)
            self.checkpointed.pop(shard, None)
            self.sought.pop(shard, None)
            self.last_taken.pop(shard, None)


def assigned_shards() -> set[int]:
    """The shards this worker owns now: its active partitions of ``scoring``.

    Faust's assignor keeps the last assignment until a new one is complete, so a partition
    also has to be in the consumer's current assignment: after a revocation it is not, and a
    recovery finishing late for an assignment already revoked loads nothing it no longer owns.
    """
    topic = scoring.get_topic_name()
    current = app.consumer.assignment()
    return {
        tp.partition
        for tp in app.assignor.assigned_actives()
        if tp.topic == topic and tp in current
    }


live_shards = LiveShards(
    settings.model,
    settings.checkpoint_every,
    settings.checkpoint_seconds,
    settings.checkpoint_secret,
)
