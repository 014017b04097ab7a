"""Stage 2: score every event, learn from every label, one model shard per partition.

In: scoring (``{"kind": "event"}`` from agents/features.py, ``{"kind": "label"}`` from
agents/labels.py; key = entity key or event id, so a shard = a partition of ``scoring``).
Out: predictions (one per event and model), join (features parked until their label arrives).
State: tables.models (live models in memory, checkpoints in the ``shard-checkpoints`` table).
Messages are acknowledged only once a checkpoint covers them (see tables/models.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from faust.types import TP

from agents.engine import engine
from app import app
from app.codec import CheckpointError
from app.records import dead_letter_headers
from app.topics import declare, events_dlq, join, predictions, scoring
from tables.counters import count, remember_reject
from tables.models import OutputLost, assigned_shards, live_shards, shard_checkpoints

log = logging.getLogger(__name__)


async def _reject(message, value: dict, exc: Exception) -> None:
    reason = f"model failed on {value.get('kind')} {value.get('id')!r}: {type(exc).__name__}: {exc}"
    log.error("%s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
    count("model_errors", message.partition)
    remember_reject("model_errors", message.partition, reason, message.offset, time.time())
    sent = await events_dlq.send(
        key=value.get("id", "").encode(),
        value=orjson.dumps(value),
        headers=dead_letter_headers(reason, message.topic, message.partition, message.offset),
    )
    live_shards.sent(message.partition, sent)


async def checkpoint_periodically(interval: float = 0.2) -> None:
    """Checkpoint shards whose messages have waited long enough (see ``LiveShards.due``).

    A task of the agent rather than an ``app.timer``: Faust stops its timers as soon as the app
    begins to stop, but waits for every message to be acknowledged before it commits and closes
    the tables; this loop keeps running until then, so shutdown writes the final checkpoints.
    """
    last_error = ("", 0.0)
    while True:
        await asyncio.sleep(interval)
        try:
            await live_shards.checkpoint_due()
            for shard, tp in live_shards.waiting_for_holes():
                if live_shards.should_seek(shard):
                    # Seek again: Faust may have dropped the re-read messages while it was
                    # still handing out the rest of an older batch.
                    await _seek_back(tp, live_shards.shards[shard].offset)
            if not app.rebalancing:
                await _unstall()
        except asyncio.CancelledError:
            raise
        except OutputLost as exc:
            await _stop_worker(exc)
            return
        except CheckpointError as exc:  # said once a minute, not five times a second
            now = time.monotonic()
            if str(exc) != last_error[0] or now - last_error[1] > 60:
                log.error("%s", exc)
                last_error = (str(exc), now)
        except Exception:  # keep checkpointing: unacknowledged messages would stall Faust
            log.exception("checkpoint loop: retrying in %.1fs", interval)


#: a checkpoint still being written after this many seconds is reported (and every such period)
SLOW_CHECKPOINT = 15.0


@app.timer(interval=SLOW_CHECKPOINT)
async def report_slow_checkpoints() -> None:
    """Say which checkpoint is waiting, and on what: until it is written, the shard's events
    stay unacknowledged and a crash replays them."""
    for shard, stage, seconds in live_shards.slow_checkpoints(time.monotonic(), SLOW_CHECKPOINT):
        log.warning("shard %d: checkpoint still %s after %.0f s", shard, stage, seconds)


async def _unstall() -> None:
    """Read again the partitions of shards stuck below the end of their partition."""
    now = time.monotonic()
    topic = scoring.get_topic_name()
    for shard in list(live_shards.shards):
        tp = TP(topic, shard)
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - not fetched or not assigned yet
            continue
        if live_shards.stalled(shard, highwater, now) and live_shards.should_seek(shard):
            offset = live_shards.shards[shard].offset
            log.warning(
                "shard %d: idle at offset %d below the end (%d); reading again from %d",
                shard,
                offset,
                highwater,
                offset + 1,
            )
            await _seek_back(tp, offset)


async def _seek_back(tp, covered: int) -> None:
    live_shards.forget_faust_gaps(tp, covered)
    await app.consumer.seek(tp, covered + 1)


@app.agent(scoring, concurrency=1)
async def learn(stream):
    await declare(predictions, join, events_dlq)
    checkpointer = asyncio.ensure_future(checkpoint_periodically())
    try:
        await _learn(stream)
    except CheckpointError as exc:
        await _stop_worker(exc)
    finally:
        checkpointer.cancel()


async def _stop_worker(exc: CheckpointError) -> None:
    """A checkpoint that cannot be trusted stops the worker, loudly, instead of looping."""
    log.critical("%s", exc)
    await app.crash(exc)


async def _learn(stream) -> None:
    async for event in stream.noack().events():
        message = event.message
        shard = message.partition
        models = live_shards.get(shard)
        if models.covers(message.offset):
            live_shards.n_skipped += 1
            if live_shards.covered_by_checkpoint(shard, message.offset):
                event.ack()
            else:  # learned, but the checkpoint in the table does not cover it yet
                live_shards.hold(shard, event)
            continue
        if live_shards.ahead_of(shard, message.offset):
            # An offset past the next one the model needs: learning it now would skip messages.
            # Keep it unacknowledged (so Kafka's commit cannot pass the hole) and read again
            # from the first offset the model lacks; this copy is acknowledged once covered.
            live_shards.hold(shard, event)
            if live_shards.should_seek(shard):
                log.warning(
                    "shard %d: read offset %d before %d; reading again from %d",
                    shard,
                    message.offset,
                    models.offset + 1,
                    models.offset + 1,
                )
                await _seek_back(message.tp, models.offset)
            continue
        # no checkpoint of the shard between its step and its output's sends: it would cover
        # this message before the output the checkpoint must wait for was handed to Kafka
        live_shards.stepping.add(shard)
        try:
            await _step(shard, models, event)
        finally:
            live_shards.stepping.discard(shard)
        if len(live_shards.held[shard]) >= live_shards.every:
            await live_shards.checkpoint(shard)


async def _step(shard: int, models, event) -> None:
    message = event.message
    try:
        outcome = models.step(event.value, message.offset)
    except Exception as exc:  # a model that cannot take this event must not stop the shard
        models.offset = message.offset
        live_shards.hold(shard, event)
        await _reject(message, event.value, exc)
        return
    live_shards.hold(shard, event)
    # in Kafka before the checkpoint that covers this message (LiveShards._confirm)
    for prediction in outcome.predictions:
        live_shards.sent(shard, await predictions.send(key=prediction["id"], value=prediction))
    if outcome.park is not None:
        live_shards.sent(shard, await join.send(key=outcome.park["id"], value=outcome.park))


@shard_checkpoints.on_recover
async def load_assigned_shards() -> None:
    """Once tables are recovered, load the model of every shard this worker now owns."""
    owned = assigned_shards()
    # shards loaded for an assignment revoked before its recovery finished are not ours
    stale = set(live_shards.shards) - owned
    if stale:
        if engine is not None:
            engine.release(stale)
        live_shards.forget(stale)
    try:
        for shard in owned:
            live_shards.get(shard)
    except CheckpointError as exc:
        await _stop_worker(exc)
        return
    if engine is not None and engine.ready.is_set():
        await engine.own(owned)


@app.on_partitions_revoked.connect
async def forget_revoked_shards(app, revoked, **kwargs) -> None:
    """After a rebalance has drained the streams, checkpoint and drop the revoked shards."""
    shards = {tp.partition for tp in revoked if tp.topic == scoring.get_topic_name()}
    if engine is not None:
        engine.release(shards)
    lost = None
    try:
        for shard in shards:
            try:  # (a checkpoint in progress is waited for: the shard is forgotten next)
                await live_shards.checkpoint(shard, wait=True)
            except OutputLost as exc:
                lost = exc
                break
            except Exception:  # the next owner replays what the last checkpoint did not cover
                log.exception("shard %d: checkpoint on revocation failed", shard)
    finally:
        live_shards.forget(shards)
    if lost is not None:
        await _stop_worker(lost)
