"""Check raw labels; route the bad ones to the labels' dead-letter topic.

Reads: the labels topic (raw bytes).
Writes: ``<id>-join`` (the checked label, key = event id) for agents/labels.py, and
``<labels>-dlq`` (the original bytes; reason and origin in headers).
Keeps: tables.counters (dead labels per partition, the last reasons).
Events are checked by the engine (agents/engine.py); nothing malformed gets past either, and
nothing crashes them.
"""

from __future__ import annotations

import time
from typing import Any

import faust

from app.config import Config
from app.contracts.mapping import LabelMapping, Origin
from app.contracts.records import Malformed, ahead_of_clock, parse_label
from app.kafka.topics import Topics, declare
from tables.counters import Counters


def read_label(raw: bytes | None, message, mapping: LabelMapping | None) -> dict:
    """The label ``raw`` is, by ``mapping`` if there is one; raises ``Malformed``."""
    if mapping is None:
        return parse_label(raw)
    origin = Origin(
        message.topic, message.partition, message.offset, message.key, int(message.timestamp * 1000)
    )
    return mapping.read(raw, origin)


def install(app: faust.App, config: Config, topics: Topics, counters: Counters) -> Any:
    """Add the agent that checks ``topics.labels`` to ``app``; returns it."""
    join, labels_dlq = topics.join, topics.labels_dlq

    async def reject(stream, raw: bytes | None, reason: str) -> None:
        message = stream.current_event.message
        source = (message.topic, message.partition, message.offset)
        headers = counters.refuse("dead_labels", message.partition, reason, source, time.time())
        # sent as the agent's own output (acknowledged with the label), not with a shard's
        # checkpoint: labels partitions are not shards
        value = raw if raw is not None else b""
        await labels_dlq.send(key=message.key, value=value, headers=headers)

    @app.agent(topics.labels)
    async def validate_labels(stream):
        await declare(join, labels_dlq)
        async for raw in stream:
            try:
                label = read_label(raw, stream.current_event.message, config.label_mapping)
            except Malformed as exc:
                await reject(stream, raw, str(exc))
                continue
            problem = config.check_label(label["y"]) or ahead_of_clock(
                label["ts"], time.time(), config.max_future
            )
            if problem is not None:
                await reject(stream, raw, problem)
                continue
            await join.send(key=label["id"], value={"kind": "label", **label})

    return validate_labels
