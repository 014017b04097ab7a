"""The one home of a shard's life on this worker: assignment, recovery, revocation, the
checkpoint loop and stop.

Faust decides who owns what: a worker owns model shard ``p`` when Faust assigns it partition
``p`` of ``scoring`` (co-partitioned with the events topic the engine reads, ``join`` and the
tables). A :class:`Shards` (one per worker, built by ``app/worker.py``) is the only owner of the
worker's ``tables.live_shard.LiveShard`` objects, and the engine and the learner ask it for them:

* once Faust has recovered the tables for an assignment, :meth:`Shards.load` creates each newly
  owned shard (restored from its checkpoint, or fresh), marks exactly those as read, and tells
  the reader (the engine) where to read each from; a ``scoring`` message never creates a shard;
* when partitions are revoked, :meth:`Shards.revoke` stops the engine taking them, writes their
  checkpoints and drops each shard in one call;
* :meth:`Shards.run_checkpoints` (a task of the engine service) checkpoints shards that owe one
  and reads ``scoring`` again where Faust skipped offsets; :meth:`Shards.stop` writes the last
  checkpoints when the engine stops;
* with STREAMLEARN_PROCESSING_GUARANTEE=exactly_once, :meth:`Shards.fence` opens each newly
  assigned shard's transactional outbox as soon as Faust assigns it (fencing its last owner,
  aborting what a killed worker left open) and ends its changelogs with a record Faust's
  recovery can see; :meth:`Shards.opened` hands the outbox to the shard, and what steps a shard
  waits there while a commit is in progress; revoked and stopped shards' producers are closed.

What the shards need of Faust (its consumer and assignor, whether it rebalances, stopping it)
goes through one :class:`FaustConsumer`; :func:`install` connects the keeper to Faust's
recovery and revocation. :class:`WorkerFigures` is what the web views read of the worker
(``app/web/figures.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import faust
from faust.types import TP

from app import compat
from app.config import Config
from app.features.encode import one_hot
from app.kafka.outbox import Outbox, partition_of
from app.kafka.transaction import ShardOutbox
from app.models.codec import CheckpointError
from app.models.shard import ShardModels
from tables.checkpoints import OutputLost
from tables.counters import Counters
from tables.live_shard import LiveShard, ShardTables
from tables.versions import stored_versions
from tables.windows import window_state

log = logging.getLogger(__name__)

#: a checkpoint still being written after this many seconds is reported (and every such period)
SLOW_CHECKPOINT = 15.0
#: the key (in each table's own encoding) of the tombstones written after a shard's transactions
#: (:meth:`FaustConsumer.mark_end`): no table holds it
TAIL_KEY = "\x00streamlearn-transactions-end"


class Reader(Protocol):
    """What reads the owned shards' events (the engine)."""

    async def read(self, offsets: dict[int, int]) -> None:
        """Read exactly these shards' events partitions, each from its offset."""
        ...


class FaustConsumer:
    """The one place the shards touch Faust's app: its consumer and assignor, whether it is
    rebalancing, and stopping it."""

    def __init__(self, app: faust.App, scoring: Any) -> None:
        self.app = app
        #: the topic whose partitions are the shards (``<id>-scoring``)
        self.scoring = scoring

    def assigned(self) -> set[int]:
        """The shards this worker owns now: its active partitions of ``scoring``.

        Faust's assignor keeps the last assignment until a new one is complete, so a partition
        also has to be in the consumer's current assignment: after a revocation it is not, and a
        recovery finishing late for an assignment already revoked loads nothing it no longer
        owns.
        """
        topic = self.scoring.get_topic_name()
        current = self.app.consumer.assignment()
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == topic and tp in current
        }

    def highwater(self, tp: TP) -> int | None:
        """The end of ``tp`` as Faust's consumer last fetched it (None: not known)."""
        try:
            return self.app.consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not fetched or not assigned yet
            return None

    async def seek_back(self, tp: TP, covered: int) -> None:
        """Read ``tp`` again from ``covered + 1``.

        Faust marks offsets it saw skipped as done and lets its commit pass them; the learner
        reads them again instead, so the commit must wait for them: Faust's record of those gaps
        is dropped.
        """
        compat.forget_gaps(self.app.consumer, tp, covered + 1)
        await self.app.consumer.seek(tp, covered + 1)

    def forget(self, message: Any) -> None:
        """Stop waiting for ``message``'s acknowledgement (the next owner reads it again)."""
        compat.forget_unacked(self.app.consumer, message)

    def leaving(self) -> bool:
        """Whether a rebalance or the worker's stop is under way."""
        return bool(self.app.rebalancing or self.app.should_stop)

    def rebalancing(self) -> bool:
        """Whether a rebalance is under way."""
        return bool(self.app.rebalancing)

    async def mark_end(self, ends: list[tuple[str, int, bytes]]) -> None:
        """Write a tombstone of ``key`` at the end of each ``(topic, partition, key)``, with
        Faust's own producer (no transaction), and wait until Kafka has it.

        Faust's table recovery waits for a message at the last offset of each changelog
        partition (its highwater - 1); when that offset is the marker of a transaction (a
        commit, or the abort of one a killed worker left open), no message ever comes there
        and the recovery never ends. A record after the marker ends it; deleting a key no
        table holds changes no state."""
        for topic, partition, key in ends:
            await self.app.producer.send_and_wait(topic, key, None, partition, None, None)

    async def crash(self, exc: BaseException) -> None:
        """Stop the worker with ``exc`` as the reason."""
        await self.app.crash(exc)


class Shards:
    """The shards this worker owns, by shard number, and what happens to them."""

    def __init__(
        self,
        config: Config,
        tables: ShardTables,
        consumer: FaustConsumer | None = None,
        open_outbox: Callable[[int], Awaitable[ShardOutbox]] | None = None,
    ) -> None:
        self.specs = list(config.specs)
        #: a shard owes a checkpoint after this many messages or seconds
        self.every = config.checkpoint_every
        self.seconds = config.checkpoint_seconds
        #: what every shard writes to (its checkpoints, key windows, counters)
        self.tables = tables
        self.checkpoints = tables.checkpoints
        self.live: dict[int, LiveShard] = {}
        self.reader: Reader | None = None
        self.n_restored = 0
        self.n_reread = 0
        #: the features keyed events get
        self.recipe = config.recipe
        self.consumer = consumer
        self.key_cache = config.key_cache
        #: exactly_once: what opens a shard's transactional outbox (None: at least once), and
        #: each shard's opening under way, or done and not taken by its live shard yet (one per
        #: shard: two producers of one transactional id fence each other)
        self.open_outbox = open_outbox
        self.fenced: dict[int, asyncio.Future[ShardOutbox]] = {}

    # -- life -----------------------------------------------------------------------------

    def adopt(self, shard: int) -> LiveShard:
        """The live shard ``shard``: in memory, else restored from its checkpoint, else fresh
        (an assigned shard, once the tables are recovered)."""
        live = self.live.get(shard)
        if live is None:
            models, restored = self.checkpoints.read(shard)
            self.n_restored += restored
            live = self.live[shard] = LiveShard(
                models, self.tables, self.key_cache, self.recipe, self.consumer
            )
        return live

    def start(self, reader: Reader, outbox: Outbox) -> None:
        """The engine has started: it reads the owned shards, checkpoints go through ``outbox``
        (exactly_once: each shard's through its own)."""
        self.reader = reader
        self.checkpoints.outbox = outbox

    async def fence(self, assigned: set[int]) -> None:
        """exactly_once: open the transactional outbox of each shard just assigned, as soon as
        Faust assigns it (its recovery runs meanwhile): opening it fences the shard's previous
        producer and aborts the transaction it left open (a worker killed), whose messages would
        otherwise hold back every ``read_committed`` reader of those partitions, Faust's table
        recovery among them, until the transaction timed out. A shard stepped before its opening
        is done waits for the same opening (:meth:`opened`)."""
        if self.open_outbox is None:
            return
        for shard in sorted(assigned):
            live = self.live.get(shard)
            if live is None or live.own_outbox is None:
                await asyncio.shield(self._opening(shard))  # (its error is raised)
        # Each changelog of every assigned shard ends with a record, not a transaction's marker:
        # Faust's recovery also reads again what it has not seen of shards a worker keeps
        # (their checkpoints are written past it), up to the end. (A shard kept is waited for
        # if a commit is in progress: its marker then lands before the record, as a rule.)
        for shard in sorted(assigned):
            live = self.live.get(shard)
            if live is not None and not live.gate.is_set():
                await live.gate.wait()
        if self.consumer is not None:
            ends = self.changelog_ends()
            await self.consumer.mark_end([(t, s, k) for s in sorted(assigned) for t, k in ends])

    def changelog_ends(self) -> list[tuple[str, bytes]]:
        """The changelog topics a shard writes in its transactions (its partition of each),
        each with :data:`TAIL_KEY` in its table's encoding."""
        tables = [self.checkpoints.table, self.tables.windows, self.tables.versions]
        return [
            (t.changelog_topic.get_topic_name(), compat.store_encoders(t.data)[0](TAIL_KEY))
            for t in tables
            if t is not None
        ]

    async def ready_to_step(self, shard: int) -> LiveShard | None:
        """Shard ``shard`` once it may be stepped (:meth:`opened`), or None: not held here, or
        dropped meanwhile (what an agent of its messages then leaves unacknowledged)."""
        live = self.live.get(shard)
        if live is not None and not live.steppable():
            await self.opened(live)
            live = self.live.get(shard)
        return live if live is not None and live.steppable() else None

    async def opened(self, live: LiveShard) -> bool:
        """Wait until ``live`` may be stepped: exactly_once, its transactional outbox open and
        no commit in progress. False: it was dropped meanwhile, or the engine stopped."""
        while not live.steppable():
            if live.dropped or self.reader is None or self.open_outbox is None:
                return False
            if not live.gate.is_set():
                await live.gate.wait()
                continue
            async with live.opening:
                if live.own_outbox is None and not live.dropped:
                    opening = self._opening(live.shard)
                    outbox = await asyncio.shield(opening)  # (its error is raised)
                    if self.fenced.get(live.shard) is not opening:
                        continue  # (revoked or stopped meanwhile: :meth:`unfence` closes it)
                    del self.fenced[live.shard]
                    if live.dropped or self.reader is None:
                        await _close_outbox(live.shard, outbox)
                        return False
                    live.own_outbox = outbox
        return not live.dropped

    def _opening(self, shard: int) -> asyncio.Future[ShardOutbox]:
        """The opening of ``shard``'s outbox under way (or done, not taken yet), else a new
        one: the assignment's fence and the first step of the shard can both ask for it before
        it is open (Faust's recovery does not wait for the fence), and a second producer of the
        shard's transactional id would fence the first one, which the shard then writes through.
        """
        opening = self.fenced.get(shard)
        if opening is None:
            opening = self.fenced[shard] = asyncio.ensure_future(self.open_outbox(shard))
            # (a callback, run before any waiter resumes: even with every waiter cancelled)
            opening.add_done_callback(functools.partial(self._failed, shard))
        return opening

    def _failed(self, shard: int, opening: asyncio.Future[ShardOutbox]) -> None:
        """An opening that failed is forgotten: its waiters get its error, the next ask opens
        again (a caller cancelled while it opens leaves it to the others, or to unfence)."""
        failed = opening.cancelled() or opening.exception() is not None
        if failed and self.fenced.get(shard) is opening:
            del self.fenced[shard]

    async def load(self, owned: set[int]) -> None:
        """Own exactly ``owned`` (tables recovered), and have the reader read exactly those."""
        await self.close(self.own(owned))
        if self.reader is not None:
            await self.reader.read(self.read_offsets())

    def own(self, owned: set[int]) -> list[LiveShard]:
        """Hold exactly ``owned``, each read by the engine: new shards are created (restored or
        fresh), the others dropped (returned: their outboxes to :meth:`close`)."""
        # shards loaded for an assignment revoked before its recovery finished are not ours
        stale = set(self.live) - owned
        dropped = self._drop(stale) if stale else []
        for shard in sorted(owned):
            self.adopt(shard).reading = True
        return dropped

    def read_offsets(self) -> dict[int, int]:
        """Where to read each shard the engine reads: right after the last event it took."""
        return {s: live.events_offset + 1 for s, live in self.live.items() if live.reading}

    def reading(self) -> list[int]:
        """The shards whose events the engine reads, in order."""
        return sorted(s for s, live in self.live.items() if live.reading)

    def read_by_engine(self, shard: int) -> LiveShard | None:
        """Shard ``shard`` if the engine is to take its events (None: not owned, or revoked
        while its records were read)."""
        live = self.live.get(shard)
        return live if live is not None and live.reading else None

    def owned(self, shard: int) -> LiveShard | None:
        """Shard ``shard`` if this worker holds it (None: not loaded, or dropped)."""
        return self.live.get(shard)

    def lags(self) -> dict[int, int]:
        """Events not read yet, per shard the engine reads (as of its last read)."""
        return {
            s: live.lag for s, live in self.live.items() if live.reading and live.lag is not None
        }

    def output_lost(self, shard: int, exc: BaseException) -> OutputLost:
        """Kafka refused output of ``shard``: no checkpoint of this process may be written."""
        return self.checkpoints.output_lost(shard, exc)

    def features(self, key: str) -> dict | None:
        """One key's windows at its latest event (``GET /features/{key}/``), or None."""
        for live in self.live.values():
            state = live.windows.cache.get(key)
            if state is not None:
                break
        else:
            state = window_state(self.tables.windows, key, self.recipe)
        if state is None:
            return None
        return {"key": key, "last_seen": state["t"], "features": self.recipe.latest(state)}

    async def revoke(self, revoked: set[int]) -> None:
        """Checkpoint and drop ``revoked`` shards (a rebalance has drained Faust's streams)."""
        for shard in revoked & set(self.live):
            self.live[shard].reading = False  # the engine takes none of their records now
        lost = None
        try:
            for shard in sorted(revoked & set(self.live)):
                try:  # (a checkpoint in progress is waited for: the shard is dropped next)
                    await self.live[shard].checkpoint(wait=True)
                except OutputLost as exc:
                    lost = exc
                    break
                except Exception:  # the next owner replays what the last checkpoint missed
                    log.exception("shard %d: checkpoint on revocation failed", shard)
        finally:
            await self.close(self._drop(revoked))
            await self.unfence(revoked)
        if lost is not None:
            await self.stop_worker(lost)

    def _drop(self, gone: set[int]) -> list[LiveShard]:
        dropped = []
        for shard in gone:
            live = self.live.pop(shard, None)
            if live is not None:
                live.drop()
                dropped.append(live)
        return dropped

    async def unfence(self, shards: set[int] | None = None) -> None:
        """Close the outboxes opened for ``shards`` (all: None) that no shard took; one still
        opening is let finish, then closed (even if this is cancelled meanwhile)."""
        chosen = sorted(self.fenced if shards is None else shards & set(self.fenced))
        taken = [(shard, self.fenced.pop(shard)) for shard in chosen]  # (all at once)
        if taken:
            closing = [asyncio.ensure_future(_close_opened(*entry)) for entry in taken]
            await asyncio.shield(asyncio.gather(*closing))

    @staticmethod
    async def close(dropped: list[LiveShard]) -> None:
        """Stop the transactional producers of ``dropped`` shards (exactly_once)."""
        for live in dropped:
            outbox, live.own_outbox = live.own_outbox, None
            if outbox is not None:
                await _close_outbox(live.shard, outbox)

    async def stop(self) -> None:
        """The engine stops: write what every shard has not checkpointed, then let go of the
        outbox (its producer stops next)."""
        self.reader = None  # (from now on no shard's outbox is opened: :meth:`opened`)
        for live in self.live.values():
            live.reading = False
        for shard, live in sorted(self.live.items()):
            try:
                await live.checkpoint(wait=True)
            except Exception:  # noqa: BLE001 - shutting down: the replay covers it
                log.exception("shard %d: final checkpoint failed", shard)
        await self.close(list(self.live.values()))
        await self.unfence()
        self.checkpoints.outbox = None

    # -- the checkpoint loop ---------------------------------------------------------------

    async def checkpoint_due(self) -> None:
        """Checkpoint every shard that owes one."""
        now = time.monotonic()
        urgent = self.consumer is not None and self.consumer.leaving()
        for live in list(self.live.values()):
            if live.due(now, self.every, self.seconds, urgent):
                await live.checkpoint()

    async def run_checkpoints(self, interval: float = 0.2) -> None:
        """Checkpoint shards whose messages have waited long enough, and read ``scoring`` again
        where Faust skipped offsets; runs until the engine stops (after Faust has waited for the
        held messages to be acknowledged). A checkpoint that cannot be trusted stops the worker.
        """
        last_error = ("", 0.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.checkpoint_due()
                for live in list(self.live.values()):
                    tp = live.early()
                    if tp is not None and live.should_seek():
                        # Seek again: Faust may have dropped the re-read messages while it was
                        # still handing out the rest of an older batch.
                        await self.seek_back(tp, live.models.offset)
                if self.consumer is not None and not self.consumer.rebalancing():
                    await self.unstall()
            except asyncio.CancelledError:
                raise
            except OutputLost as exc:
                await self.stop_worker(exc)
                return
            except CheckpointError as exc:  # said once a minute, not five times a second
                now = time.monotonic()
                if str(exc) != last_error[0] or now - last_error[1] > 60:
                    log.error("%s", exc)
                    last_error = (str(exc), now)
            except Exception:  # keep checkpointing: unacknowledged messages would stall Faust
                log.exception("checkpoint loop: retrying in %.1fs", interval)

    async def unstall(self) -> None:
        """Read again the ``scoring`` partitions of shards stuck below their end."""
        now = time.monotonic()
        topic = self.tables.anchor
        for shard, live in list(self.live.items()):
            tp = TP(topic, shard)
            highwater = self.consumer.highwater(tp) if self.consumer is not None else None
            if live.stalled(highwater, now) and live.should_seek():
                offset = live.models.offset
                log.warning(
                    "shard %d: idle at offset %d below the end (%d); reading again from %d",
                    shard,
                    offset,
                    highwater,
                    offset + 1,
                )
                await self.seek_back(tp, offset)

    async def seek_back(self, tp, covered: int) -> None:
        """Read ``tp`` of ``scoring`` again from ``covered + 1`` (counted in ``rereads``)."""
        self.n_reread += 1
        await self.consumer.seek_back(tp, covered)

    async def stop_worker(self, exc: CheckpointError) -> None:
        """A checkpoint that cannot be trusted stops the worker, loudly, instead of looping."""
        log.critical("%s", exc)
        if self.consumer is not None:
            await self.consumer.crash(exc)

    def slow_checkpoints(self, now: float, after: float) -> list[tuple[int, str, float]]:
        """Checkpoints in progress for ``after`` seconds or more: (shard, stage, seconds)."""
        out = []
        for shard, live in sorted(self.live.items()):
            if live.writing is not None and now - live.writing[1] >= after:
                out.append((shard, live.writing[0], now - live.writing[1]))
        return out


def install(app: faust.App, shards: Shards, checkpoints_table: Any) -> None:
    """Have ``app`` tell ``shards`` what this worker owns: once the tables are recovered
    (``checkpoints_table``: the ``shard-checkpoints`` table), and when partitions are revoked;
    and report slow checkpoints."""

    @checkpoints_table.on_recover
    async def load_assigned_shards() -> None:
        """Once tables are recovered, load the models of every shard this worker now owns."""
        try:
            await shards.load(shards.consumer.assigned())
        except CheckpointError as exc:
            await shards.stop_worker(exc)

    @app.on_partitions_assigned.connect
    async def fence_assigned_shards(app, assigned, **kwargs) -> None:
        """exactly_once: each newly assigned shard's previous producer fenced, at once."""
        scoring = shards.tables.anchor
        await shards.fence({tp.partition for tp in assigned if tp.topic == scoring})

    @app.on_partitions_revoked.connect
    async def forget_revoked_shards(app, revoked, **kwargs) -> None:
        """After a rebalance has drained the streams, checkpoint and drop the revoked shards."""
        scoring = shards.tables.anchor
        await shards.revoke({tp.partition for tp in revoked if tp.topic == scoring})

    @app.timer(interval=SLOW_CHECKPOINT)
    async def report_slow_checkpoints() -> None:
        """Say which checkpoint is waiting, and on what: until it is written, the shard's events
        stay unacknowledged and a crash replays them."""
        for shard, stage, seconds in shards.slow_checkpoints(time.monotonic(), SLOW_CHECKPOINT):
            log.warning("shard %d: checkpoint still %s after %.0f s", shard, stage, seconds)


async def _close_opened(shard: int, opening: asyncio.Future[ShardOutbox]) -> None:
    """Close the outbox ``opening`` opens, once it is open (nothing: its opening failed)."""
    await asyncio.wait([opening])
    if not opening.cancelled() and opening.exception() is None:
        await _close_outbox(shard, opening.result())


async def _close_outbox(shard: int, outbox: ShardOutbox) -> None:
    """Stop a shard's transactional producer; a transaction left open is aborted by Kafka when
    the shard's next owner opens it (so a failure here is only said)."""
    try:
        await outbox.close()
    except Exception:  # noqa: BLE001 - the next owner fences it anyway
        log.exception("shard %d: closing its producer failed", shard)


class WorkerFigures:
    """The figures of this worker for ``app/web/figures.py``: its shards, counters and engine."""

    def __init__(self, app: faust.App, keeper: Shards, counters: Counters) -> None:
        self.app = app
        self.keeper = keeper
        self.counters_of = counters
        #: the engine's own figures (``stats``, ``features``), if any
        self.engine: Any = None
        #: what reads Kafka outside Faust's consumer (``received()``, ``lag``): engine, re-key
        self.readers: list[Any] = []

    def shards(self) -> dict[int, ShardModels]:
        return {shard: live.models for shard, live in self.keeper.live.items()}

    def model_names(self) -> set[str]:
        return {spec.name for spec in self.keeper.specs}

    def checkpoint_ages(self, now: float) -> dict[int, float]:
        return {
            shard: now - live.last_checkpoint_wall
            for shard, live in self.keeper.live.items()
            if live.last_checkpoint_wall is not None
        }

    def stats(self) -> dict[str, Any]:
        keeper = self.keeper
        now = time.time()
        return {
            "counters": self.counters_of.totals(),
            "recent_dead_letters": self.counters_of.recent(),
            "shards_owned": sorted(keeper.live),
            "checkpoints_restored": keeper.n_restored,
            "messages_skipped": sum(live.n_skipped for live in keeper.live.values()),
            "rereads": keeper.n_reread,
            "duplicates_dropped": sum(live.models.n_duplicates for live in keeper.live.values()),
            "checkpoint_age_s": {s: round(a, 3) for s, a in self.checkpoint_ages(now).items()},
            "checkpoints_writing": {
                shard: {"stage": stage, "seconds": round(seconds, 3)}
                for shard, stage, seconds in keeper.slow_checkpoints(time.monotonic(), 0.0)
            },
            "feature_keys": sum(len(live.windows.cache) for live in keeper.live.values()),
            "engine": self.engine.stats() if self.engine is not None else None,
        }

    def counters(self) -> dict[str, int]:
        return self.counters_of.totals()

    def messages_received(self) -> dict[str, int]:
        out = dict(self.app.monitor.messages_received_by_topic)
        for reader in self.readers:
            for topic, n in reader.received().items():
                out[topic] = out.get(topic, 0) + n
        return out

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        monitor = self.app.monitor
        out = {}
        for tp, end in monitor.tp_end_offsets.items():
            read = monitor.tp_read_offsets.get(tp)
            if read is not None:
                out[(tp.topic, tp.partition)] = max(0, end - read - 1)
        for reader in self.readers:  # they read outside Faust's consumer
            out.update(reader.lag)
        return out

    def features(self, key: str) -> dict[str, Any] | None:
        return self.keeper.features(key)

    def model_events(self) -> list[dict]:
        events = [e for live in self.keeper.live.values() for e in live.models.recent_events]
        return sorted(events, key=lambda e: e.get("t", 0.0), reverse=True)

    def versions(self, name: str) -> list[dict]:
        table = self.keeper.tables.versions
        if table is None:
            return []
        owned = set(self.keeper.live)
        return [v for v in stored_versions(table, name) if v["shard"] in owned]


class Scorer:
    """Scores on request (``POST /predict/``, app/web/predict.py) with the shards held here:
    the champion of the key's shard, on the key's windowed features as the stream would
    compute them for the event, changing nothing."""

    def __init__(self, app: faust.App, keeper: Shards, partitions: int) -> None:
        self.app = app
        self.keeper = keeper
        self.partitions = partitions

    def shard_of(self, event: dict) -> int:
        """The shard an event belongs to: its key's (its id's, without a key), as Kafka's
        default partitioner places it on the events topic."""
        routing = (event["key"] if event["key"] is not None else event["id"]).encode()
        return partition_of(routing, self.partitions)

    def ready(self, shard: int) -> bool:
        """Whether this worker holds ``shard`` and its models are loaded, no rebalance going on."""
        return not self.app.rebalancing and self.keeper.read_by_engine(shard) is not None

    def owner(self, shard: int) -> str | None:
        """The web address of the worker that holds ``shard`` (None: not known now)."""
        changelog = self.keeper.tables.checkpoints.table.changelog_topic.get_topic_name()
        try:
            hosts = self.app.router.tables_metadata()
        except Exception:  # noqa: BLE001 - no assignment yet
            return None
        for url, topics in hosts.items():
            if shard in topics.get(changelog, ()):
                return str(url).rstrip("/")
        return None

    def score(self, event: dict, all_models: bool) -> dict:
        """The answer for a checked event of a shard held here (:meth:`ready`)."""
        live = self.keeper.read_by_engine(self.shard_of(event))
        x = dict(event["x"])
        if event["key"] is not None:
            live.windows.peek(event["key"], event["ts"], x)
        event = {**event, "x": one_hot(x)}
        answers = live.models.answer(event, all_models)
        champion = answers[0]
        out = {"id": event["id"], "key": event["key"], **champion, "features": event["x"]}
        if all_models:
            out["challengers"] = answers[1:]
        return out
