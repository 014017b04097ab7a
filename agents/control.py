"""Commands to the shards: ``faust -A app models promote|rollback`` reach them here.

Reads: ``<id>-control`` (one partition per shard, co-partitioned with ``<id>-scoring``: the
owner of shard ``p`` reads partition ``p``); each message is a command (``{"action": "promote"
| "rollback", "model", "version"?, "id"}``). Writes: what it did, on the model-events topic
(through the engine's outbox), and the shard's checkpoint, at once. Keeps nothing: the shard
records the command's offset in its checkpoint (``origins["c<p>"]``), so each shard applies each
command exactly once: a copy read again after a crash is skipped, and a message is acknowledged
only once a checkpoint covers it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from agents.engine import Engine
from agents.shards import Shards
from app.kafka.topics import Topics

log = logging.getLogger(__name__)

#: tries to write the checkpoint that covers a command before it is left unacknowledged (the
#: next checkpoint covers it; a restart reads it again and skips it by its offset)
TRIES = 5


def install(app: faust.App, shards: Shards, engine: Engine, topics: Topics) -> Any:
    """Add the agent of ``topics.control`` to ``app``; returns it."""

    @app.agent(topics.control, concurrency=1)
    async def control(stream):
        async for event in stream.noack().events():
            await engine.ready.wait()  # the engine is starting: its outbox next
            message = event.message
            # (exactly_once: waits for its outbox, or for a commit in progress)
            live = await shards.ready_to_step(message.partition)
            if live is None:
                continue  # not held here: left unacknowledged, the owner reads it
            if message.offset <= live.models.origins.get(f"c{live.shard}", -1):
                event.ack()  # applied before a restart, and checkpointed
                continue
            record = live.command(event.value, message.offset)
            log.warning("shard %d: %s: %s", live.shard, record["type"], record.get("reason"))
            engine.publish_model_events(live)
            for attempt in range(TRIES):
                try:
                    await live.checkpoint(wait=True)
                except Exception:  # noqa: BLE001 - said, tried again
                    log.exception("shard %d: checkpoint after a command", live.shard)
                    await asyncio.sleep(min(2**attempt, 10))
                    continue
                event.ack()
                break

    return control
