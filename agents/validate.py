"""Stage 0: check raw events and labels; route the bad ones to dead-letter topics.

In: events (raw bytes), labels (raw bytes).
Out: clean (event dict, key = entity key or event id), join (label, key = event id),
     events-dlq / labels-dlq (the original bytes; reason and origin in headers).
State: tables.counters (dead letters per partition).
Only this module touches raw payloads; nothing malformed gets past it and nothing crashes it.
"""

from __future__ import annotations

import logging
import time

from app import app, settings
from app.label_rules import label_check
from app.model_spec import parse_specs
from app.records import Malformed, dead_letter_headers, parse_event, parse_label
from app.topics import clean, declare, events, events_dlq, join, labels, labels_dlq
from tables.counters import count, remember_reject

log = logging.getLogger(__name__)

#: what is wrong with a label for the configured models (app/label_rules.py)
check_label = label_check(parse_specs(settings.model))


def routing_key(event: dict) -> str:
    """The key an event travels under: its entity key, or its id when it has none.

    >>> routing_key({"id": "e1", "key": None}), routing_key({"id": "e1", "key": "card-1"})
    ('e1', 'card-1')
    """
    return event["key"] if event["key"] is not None else event["id"]


async def _reject(stream, dlq, raw: bytes | None, reason: str, counter: str) -> None:
    message = stream.current_event.message
    log.warning("rejected %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
    count(counter, message.partition)
    remember_reject(counter, message.partition, reason, message.offset, time.time())
    await dlq.send(
        key=message.key,
        value=raw if raw is not None else b"",
        headers=dead_letter_headers(reason, message.topic, message.partition, message.offset),
    )


async def validate_events(stream):
    await declare(clean, events_dlq)
    async for raw in stream:
        try:
            event = parse_event(raw)
        except Malformed as exc:
            await _reject(stream, events_dlq, raw, str(exc), "dead_letters")
            continue
        problem = check_label(event["y"]) if "y" in event else None
        if problem is not None:
            await _reject(stream, events_dlq, raw, problem, "dead_letters")
            continue
        message = stream.current_event.message
        event["t_in"] = message.timestamp
        event["src"] = ["e", message.partition, message.offset]
        await clean.send(key=routing_key(event), value=event)


if settings.engine == "agents":  # else agents/engine.py reads the events topic
    validate_events = app.agent(events)(validate_events)


@app.agent(labels)
async def validate_labels(stream):
    await declare(join, labels_dlq)
    async for raw in stream:
        try:
            label = parse_label(raw)
        except Malformed as exc:
            await _reject(stream, labels_dlq, raw, str(exc), "dead_labels")
            continue
        problem = check_label(label["y"])
        if problem is not None:
            await _reject(stream, labels_dlq, raw, problem, "dead_labels")
            continue
        await join.send(key=label["id"], value={"kind": "label", **label})
