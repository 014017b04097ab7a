"""The learner: each model shard learns the delayed labels joined with their events' features.

Reads: ``<id>-scoring`` (joined labels from agents/labels.py; partition = model shard).
Writes: ``<labels>-dlq`` (a joined label a model raised on, with the reason) through the engine's
outbox, which the shard's next checkpoint flushes.
Keeps: nothing of its own: it steps the shard's models (agents/shards.py) and holds each message
unacknowledged until a checkpoint covers it (tables/live_shard.py), so Kafka's commit never passes
what the checkpoint in the table has learned. A copy of a joined label that the join sent again
after a crash is dropped by its origin (``src``); an offset past a hole is read again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import orjson

from agents.engine import Engine
from agents.shards import Shards
from app.kafka.topics import Topics
from tables.anchor import writing_to
from tables.counters import Counters
from tables.live_shard import LiveShard

log = logging.getLogger(__name__)


def install(
    app: faust.App, shards: Shards, engine: Engine, topics: Topics, counters: Counters
) -> Any:
    """Add the learner of ``topics.scoring`` to ``app``; returns it."""

    @app.agent(topics.scoring, concurrency=1)
    async def learn(stream):
        async for event in stream.noack().events():
            await engine.ready.wait()  # the engine is starting: its outbox next
            message = event.message
            # (exactly_once: waits for its outbox, or for a commit in progress)
            live = await shards.ready_to_step(message.partition)
            if live is None:
                # not (or no longer) held here: left unacknowledged, the owner reads it (a shard is
                # created when its assignment's tables are recovered, never by a message)
                continue
            if live.models.covers(message.offset):
                live.n_skipped += 1
                if live.covered_by_checkpoint(message.offset):
                    event.ack()
                else:  # learned, but the checkpoint in the table does not cover it yet
                    live.hold(event)
                continue
            if live.ahead_of(message.offset):
                # An offset past the next one the model needs: learning it now would skip messages.
                # Keep it unacknowledged (so Kafka's commit cannot pass the hole) and read again
                # from the first offset the model lacks; this copy is acknowledged once covered.
                live.hold(event)
                if live.should_seek():
                    expected = live.models.offset + 1
                    log.warning(
                        "shard %d: read offset %d before %d; reading again from %d",
                        live.shard,
                        message.offset,
                        expected,
                        expected,
                    )
                    await shards.seek_back(message.tp, live.models.offset)
                continue
            learn_label(live, event.value, message.offset, engine, counters)
            live.hold(event)
            if len(live.held) >= shards.every:
                await live.checkpoint()

    return learn


def learn_label(
    live: LiveShard, value: dict, offset: int, engine: Engine, counters: Counters
) -> None:
    """Step one joined label at ``scoring`` ``offset`` into ``live``'s models; a label a model
    raises on goes to the labels' dead-letter topic (through ``engine``'s outbox) with the
    reason, and the shard goes on."""
    try:
        live.models.step(value, offset)
    except Exception as exc:  # a model that cannot take this label must not stop the shard
        live.models.offset = offset
        reason = f"model failed on label {value.get('id')!r}: {type(exc).__name__}: {exc}"
        source = (engine.anchor, live.shard, offset)
        with writing_to(live.shard, engine.anchor):
            headers = counters.refuse("model_errors", live.shard, reason, source, time.time())
        engine.dead_letter(
            live.shard,
            str(value.get("id", "")).encode(),
            orjson.dumps(value),
            headers,
            engine.config.labels_dlq_topic,
        )
        return
    if live.models.model_events:  # (a promotion)
        engine.publish_model_events(live)
