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

from app.contracts.mapping import Origin
from app.contracts.records import Malformed, ahead_of_clock, parse_label
from app.faust_app import app
from app.kafka.topics import declare, join, labels, labels_dlq
from app.models.label_rules import label_check
from app.settings import settings
from tables.counters import refuse

#: what is wrong with a label for the configured models (app/models/label_rules.py)
check_label = label_check(settings.specs)
#: how a label of a team's own shape maps to one (None: streamlearn's shape)
mapping = settings.label_mapping


def read_label(raw: bytes | None, message) -> dict:
    """The label ``raw`` is, by the mapping if there is one; raises ``Malformed``."""
    if mapping is None:
        return parse_label(raw)
    origin = Origin(
        message.topic, message.partition, message.offset, message.key, int(message.timestamp * 1000)
    )
    return mapping.read(raw, origin)


async def _reject(stream, raw: bytes | None, reason: str) -> None:
    message = stream.current_event.message
    source = (message.topic, message.partition, message.offset)
    headers = refuse("dead_labels", message.partition, reason, source, time.time())
    # sent as the agent's own output (acknowledged with the label), not with a shard's
    # checkpoint: labels partitions are not shards
    await labels_dlq.send(key=message.key, value=raw if raw is not None else b"", headers=headers)


@app.agent(labels)
async def validate_labels(stream):
    await declare(join, labels_dlq)
    async for raw in stream:
        try:
            label = read_label(raw, stream.current_event.message)
        except Malformed as exc:
            await _reject(stream, raw, str(exc))
            continue
        problem = check_label(label["y"]) or ahead_of_clock(
            label["ts"], time.time(), settings.max_future
        )
        if problem is not None:
            await _reject(stream, raw, problem)
            continue
        await join.send(key=label["id"], value={"kind": "label", **label})
