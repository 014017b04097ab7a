"""Stage 3: join delayed labels with the features parked when their event was scored.

In: join (key = event id): ``{"kind": "park"}`` from agents/learner.py (features, prediction,
shard) and ``{"kind": "label"}`` from agents/validate.py. Whichever arrives first waits in
tables.pending; when both are there, the joined label goes to ``scoring`` on the event's shard.
Out: scoring (``{"kind": "label", "x", "y", "y_pred", ...}``, partition = the event's shard).
State: tables.pending, tables.counters (orphan labels, expired events, duplicate labels).
A completed join leaves a ``joined`` marker for the TTL: a second label for the event is counted
in ``duplicate_labels``, and features parked again (the engine re-sends what its last checkpoint
did not cover after a crash) are dropped, instead of waiting to expire as if never labelled.
Waiting entries older than STREAMLEARN_LABEL_TTL seconds of event time are dropped and counted:
``expired_events`` (never labelled) and ``orphan_labels`` (a label whose event never came).
"""

from __future__ import annotations

import logging

from app import app, settings
from app.topics import declare, join, scoring
from tables.counters import count
from tables.pending import pending_by_id

log = logging.getLogger(__name__)

#: Sweep a partition for expired entries when its event time has moved this far (seconds).
SWEEP_STEP_FRACTION = 0.25


def joined(park: dict, label: dict, partition: int, offset: int) -> dict:
    """The ``scoring`` message that teaches the model a delayed label.

    ``src`` names the ``join`` message that completed the join, so that the learner can drop a
    copy of it sent again after a crash.

    >>> m = joined({"id": "e1", "key": "k", "x": {"a": 1}, "y_pred": {}, "ts": 5, "shard": 0},
    ...            {"id": "e1", "y": True, "ts": 9}, 1, 42)
    >>> m["y"], m["src"]
    (True, ['j', 1, 42])
    """
    return {
        "src": ["j", partition, offset],
        "kind": "label",
        "id": park["id"],
        "key": park["key"],
        "ts": label["ts"],
        "x": park["x"],
        "y": label["y"],
        "y_pred": park["y_pred"],
    }


def expired(entries, now_ts: float, ttl: float, partition: int) -> list[tuple[str, str]]:
    """``(id, "park" | "label" | "joined")`` of the entries of ``partition`` older than ``ttl``.

    >>> expired([("a", {"since": 0, "p": 0, "park": {}}), ("b", {"since": 90, "p": 0,
    ...          "label": {}}), ("c", {"since": 0, "p": 1, "label": {}}),
    ...          ("d", {"since": 0, "p": 0, "joined": True})], 100, 50, 0)
    [('a', 'park'), ('d', 'joined')]
    """
    return [
        (key, next(k for k in ("park", "label", "joined") if k in entry))
        for key, entry in entries
        if entry is not None and entry["p"] == partition and now_ts - entry["since"] > ttl
    ]


@app.agent(join, concurrency=1)
async def join_labels(stream):
    await declare(scoring)
    last_sweep: dict[int, float] = {}
    async for message in stream:
        partition = stream.current_event.message.partition
        offset = stream.current_event.message.offset
        event_id = message["id"]
        kind = message["kind"]
        waiting = pending_by_id.get(event_id)
        other = "label" if kind == "park" else "park"
        if waiting is not None and "joined" in waiting:
            # learned already: a second label, or features parked again after a crash
            count("duplicate_labels" if kind == "label" else "parks_dropped", partition)
        elif waiting is not None and other in waiting:
            park, label = (
                (message, waiting["label"]) if kind == "park" else (waiting["park"], message)
            )
            await scoring.send(
                key=park["key"] or event_id,
                partition=park["shard"],
                value=joined(park, label, partition, offset),
            )
            pending_by_id[event_id] = {"joined": True, "since": message["ts"], "p": partition}
        elif kind == "label" and waiting is not None:
            count("duplicate_labels", partition)
            log.warning("label for %r arrived twice before its event; keeping the first", event_id)
        else:
            pending_by_id[event_id] = {kind: message, "since": message["ts"], "p": partition}
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
