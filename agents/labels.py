"""The label join: delayed labels meet the features parked when their event was scored.

Reads: ``<id>-join`` (key = event id): ``{"kind": "park"}`` from the engine (features,
predictions, shard) and ``{"kind": "label"}`` from agents/validate.py.
Writes: ``<id>-scoring`` (the joined label, partition = the event's shard) for agents/learner.py.
Keeps: tables.pending (whichever half arrived first, then a ``joined`` marker for the TTL) and
tables.counters (duplicate labels, features parked again, expired events, orphan labels). The
rules are ``app/join.py``'s. Waiting entries older than STREAMLEARN_LABEL_TTL seconds of event
time are dropped and counted: ``expired_events`` (never labelled) and ``orphan_labels`` (a label
whose event never came).
"""

from __future__ import annotations

import logging

from app.faust_app import app
from app.join import expired, join
from app.settings import settings
from app.topics import declare, scoring
from app.topics import join as join_topic
from tables.counters import count
from tables.pending import pending_by_id

log = logging.getLogger(__name__)

#: Sweep a partition for expired entries when its event time has moved this far (seconds).
SWEEP_STEP_FRACTION = 0.25


@app.agent(join_topic, concurrency=1)
async def join_labels(stream):
    await declare(scoring)
    last_sweep: dict[int, float] = {}
    async for message in stream:
        partition = stream.current_event.message.partition
        offset = stream.current_event.message.offset
        event_id = message["id"]
        outcome = join(pending_by_id.get(event_id), message, partition, offset)
        if outcome.send is not None:
            await scoring.send(
                key=outcome.send["key"] or event_id, partition=outcome.shard, value=outcome.send
            )
        if outcome.entry is not None:
            pending_by_id[event_id] = outcome.entry
        if outcome.counter is not None:
            count(outcome.counter, partition)
            if outcome.counter == "duplicate_labels":
                log.warning("a second label for %r: keeping the first", event_id)
        now_ts = message["ts"]
        if (
            now_ts - last_sweep.setdefault(partition, now_ts)
            >= settings.label_ttl * SWEEP_STEP_FRACTION
        ):
            last_sweep[partition] = now_ts
            entries = list(pending_by_id.items())
            for key, what in expired(entries, now_ts, settings.label_ttl, partition):
                del pending_by_id[key]
                if what != "joined":
                    count("expired_events" if what == "park" else "orphan_labels", partition)
