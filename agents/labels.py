"""The label join: delayed labels meet the features parked when their event was scored.

Reads: ``<id>-join`` (key = event id): ``{"kind": "park"}`` from the engine (features,
predictions, shard) and ``{"kind": "label"}`` from agents/validate.py.
Writes: ``<id>-scoring`` (the joined label, partition = the event's shard) for agents/learner.py.
Keeps: tables.pending (whichever half arrived first, then a ``joined`` marker for the TTL) and
tables.counters (duplicate labels, features parked again, expired events, orphan labels). The
rules are ``app/models/join.py``'s. Waiting entries older than STREAMLEARN_LABEL_TTL seconds of
event time are dropped and counted: ``expired_events`` (never labelled; or, with
STREAMLEARN_LABEL_DEFAULT, learned with that label once: ``labels_defaulted``) and
``orphan_labels`` (a
label whose event never came); what moves the join's clock is said in ``app/models/join.py``. A
sweep costs what expires: an index of the entries' times per partition (``app.models.join.Expiry``)
is built from the table once per partition this worker is assigned, and kept as entries are written;
each message sweeps its partition.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from app.config import Config
from app.kafka.topics import Topics, declare
from app.models.join import Expiry, expire, join
from tables.counters import Counters

log = logging.getLogger(__name__)


def install(
    app: faust.App,
    config: Config,
    topics: Topics,
    pending: Any,
    counters: Counters,
    expiry: Expiry,
) -> Any:
    """Add the label join agent of ``topics.join`` to ``app`` (``pending``: the
    ``pending-by-id`` table; ``expiry``: when its entries expire); returns it."""
    join_topic, scoring = topics.join, topics.scoring

    @app.agent(join_topic, concurrency=1)
    async def join_labels(stream):
        await declare(scoring)
        async for message in stream:
            partition = stream.current_event.message.partition
            offset = stream.current_event.message.offset
            if not expiry.knows(partition):  # assigned (again): what waits there already
                expiry.load(partition, pending.items())
            event_id = message["id"]
            outcome = join(pending.get(event_id), message, partition, offset, config.label_ttl)
            if outcome.send is not None:
                key = outcome.send["key"] or event_id
                await scoring.send(key=key, partition=outcome.shard, value=outcome.send)
            if outcome.entry is not None:
                pending[event_id] = outcome.entry
                expiry.add(partition, event_id, outcome.entry["since"])
            if outcome.counter is not None:
                counters.count(outcome.counter, partition)
                if outcome.counter == "duplicate_labels":
                    log.warning("a second label for %r: keeping the first", event_id)
            # each message sweeps its partition: a look at the oldest entry, unless some expire
            ttl, default = config.label_ttl, config.label_default
            expired = expiry.expired(partition, message["ts"], ttl, pending.get)
            for k, (key, _) in enumerate(expired):
                gone = expire(pending[key], partition, offset, k, ttl, default)
                del pending[key]
                if gone.send is not None:  # learned with the default label, once
                    send = gone.send
                    await scoring.send(key=send["key"] or key, partition=gone.shard, value=send)
                if gone.counter is not None:
                    counters.count(gone.counter, partition)

    @app.on_partitions_revoked.connect
    async def forget_revoked_joins(app, revoked, **kwargs) -> None:
        """Revoked partitions: their index is built again from the table if they come back."""
        expiry.forget(tp.partition for tp in revoked if tp.topic == join_topic.get_topic_name())

    return join_labels
