"""Check raw labels; route the bad ones to the labels' dead-letter topic.

Reads: the labels topic (raw bytes).
Writes: ``<id>-join`` (the checked label, key = event id) for agents/labels.py, and
``<labels>-dlq`` (the original bytes; reason and origin in headers).
Keeps: tables.counters (dead labels per partition, the last reasons; ``label_tombstones``).
With ``format = "avro"`` in ``[labels]``: each label's writer schema is loaded into the agent's
decoder before it is read (``RegistryClient.load_retrying``: fetched once; a registry that
cannot be reached pauses the agent, retried with backoff, and stops the worker after
STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT; an id the registry does not know, like a message not in the
wire format, is a dead letter with the reason); a null value (a tombstone) is counted and
skipped. Events are checked by the engine (agents/engine.py); nothing malformed gets past
either, and nothing crashes them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from app.config import Config
from app.contracts.avro import AvroDecoder
from app.contracts.mapping import LabelMapping, Origin
from app.contracts.records import Malformed, ahead_of_clock, parse_label
from app.kafka.registry import RegistryUnavailable
from app.kafka.topics import Topics, declare
from tables.counters import Counters

log = logging.getLogger(__name__)

#: the counter of the null values of an Avro labels topic (skipped)
LABEL_TOMBSTONES = "label_tombstones"


def read_label(
    raw: bytes | None,
    message,
    mapping: LabelMapping | None,
    decoder: AvroDecoder | None = None,
) -> dict:
    """The label ``raw`` is, by ``mapping`` if there is one (with ``decoder``: Avro, its schema
    loaded); raises ``Malformed``."""
    if mapping is None:
        return parse_label(raw)
    origin = Origin(
        message.topic, message.partition, message.offset, message.key, int(message.timestamp * 1000)
    )
    if decoder is not None:
        return mapping.read_value(decoder.decode(raw), origin)
    return mapping.read(raw, origin)


def install(
    app: faust.App, config: Config, topics: Topics, counters: Counters, registry: Any = None
) -> Any:
    """Add the agent that checks ``topics.labels`` to ``app``; returns it (``registry``: the
    schema registry's client, for Avro labels)."""
    join, labels_dlq = topics.join, topics.labels_dlq
    mapping = config.label_mapping
    decoder = AvroDecoder() if mapping is not None and mapping.fields.format == "avro" else None

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
            if decoder is not None:
                if raw is None:
                    counters.count(LABEL_TOMBSTONES, stream.current_event.message.partition)
                    continue
                try:  # (cached: a set lookup; a new id: one request, or a pause)
                    await registry.load_retrying(decoder, [raw], config.schema_registry_timeout)
                except RegistryUnavailable as exc:
                    log.critical("labels: stopping, reading paused too long: %s", exc)
                    await app.crash(exc)
                    return
            try:
                label = read_label(raw, stream.current_event.message, mapping, decoder)
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
