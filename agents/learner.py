"""Stage 2: score every event, learn from every label, one model shard per partition.

In: scoring (``{"kind": "event"}`` from agents/features.py, ``{"kind": "label"}`` from
agents/labels.py; key = entity key or event id, so a shard = a partition of ``scoring``).
Out: predictions (one per event and model), join (features parked until their label arrives).
State: tables.models (live models in memory, checkpoints in the ``shard-checkpoints`` table).
Messages are acknowledged only once a checkpoint covers them (see tables/models.py).
"""

from __future__ import annotations

import logging

import orjson

from app import app
from app.records import dead_letter_headers
from app.topics import events_dlq, join, predictions, scoring
from tables.models import live_shards

log = logging.getLogger(__name__)


async def _reject(message, value: dict, exc: Exception) -> None:
    reason = f"model failed on {value.get('kind')} {value.get('id')!r}: {type(exc).__name__}: {exc}"
    log.error("%s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
    await events_dlq.send(
        key=value.get("id", "").encode(),
        value=orjson.dumps(value),
        headers=dead_letter_headers(reason, message.topic, message.partition, message.offset),
    )


@app.agent(scoring, concurrency=1)
async def learn(stream):
    async for event in stream.noack().events():
        message = event.message
        shard = message.partition
        models = live_shards.get(shard)
        if models.covers(message.offset):
            live_shards.n_skipped += 1
            event.ack()
            continue
        try:
            outcome = models.step(event.value, message.offset)
        except Exception as exc:  # a model that cannot take this event must not stop the shard
            models.offset = message.offset
            live_shards.hold(shard, event)
            await _reject(message, event.value, exc)
            continue
        live_shards.hold(shard, event)
        for prediction in outcome.predictions:
            await predictions.send(key=prediction["id"], value=prediction)
        if outcome.park is not None:
            await join.send(key=outcome.park["id"], value=outcome.park)
        if len(live_shards.held[shard]) >= live_shards.every:
            live_shards.checkpoint(shard)


@app.timer(interval=0.25)
async def checkpoint_models() -> None:
    """Checkpoint shards whose messages have waited ``STREAMLEARN_CHECKPOINT_SECONDS``."""
    live_shards.checkpoint_due()


@app.on_partitions_revoked.connect
async def forget_revoked_shards(app, revoked, **kwargs) -> None:
    """After a rebalance has drained the streams, drop the shards that were revoked."""
    live_shards.forget({tp.partition for tp in revoked if tp.topic == scoring.get_topic_name()})
