"""Every Kafka topic streamlearn reads or writes.

External (their names come from settings): ``events``, ``labels`` and ``predictions`` (the
champion's), the shadow topic (the challengers', if any), the dead-letter topics
``<events>-dlq`` and ``<labels>-dlq``, and the enriched topic if set.
Internal (prefixed with the app id): ``rekeyed`` (raw events keyed by entity, with
``STREAMLEARN_REKEY=1``), ``join`` (parked features and labels keyed by event id), ``scoring``
(joined labels, one partition per model shard). Raw topics are read as bytes so that a malformed
message reaches the dead-letter topic unchanged.
"""

from __future__ import annotations

import faust

from app.config import Config


class Topics:
    """The topics of one app, declared on it (``internal=True`` makes Faust create a missing
    one with STREAMLEARN_PARTITIONS partitions and STREAMLEARN_REPLICATION replicas instead of
    relying on the broker's auto-creation)."""

    def __init__(self, app: faust.App, config: Config) -> None:
        raw = {"value_serializer": "raw", "key_serializer": "raw", "internal": True}
        self.events = app.topic(config.events_topic, **raw)
        self.labels = app.topic(config.labels_topic, **raw)
        self.events_dlq = app.topic(config.dlq_topic, value_serializer="raw", internal=True)
        self.labels_dlq = app.topic(config.labels_dlq_topic, value_serializer="raw", internal=True)
        self.predictions = app.topic(config.predictions_topic, internal=True)
        self.rekeyed = app.topic(config.internal("rekeyed"), **raw)
        self.scoring = app.topic(config.internal("scoring"), internal=True)
        self.join = app.topic(config.internal("join"), internal=True)
        #: the challengers' predictions (STREAMLEARN_SHADOW_TOPIC), or None: no challenger
        self.shadow = (
            app.topic(config.shadow_predictions_topic, internal=True)
            if len(config.specs) > 1
            else None
        )
        #: commands to the shards (``faust -A app models promote|rollback``), one partition
        #: per shard
        self.control = app.topic(config.internal("control"), internal=True)
        #: the audit trail of the models (STREAMLEARN_MODEL_EVENTS_TOPIC)
        self.model_events = app.topic(config.model_events, internal=True)
        #: every event as the model saw it (STREAMLEARN_ENRICHED_TOPIC), or None
        self.enriched = (
            app.topic(config.enriched_topic, internal=True) if config.enriched_topic else None
        )


async def declare(*topics) -> None:
    """Create ``topics`` if missing. Each agent calls it for the topics it writes, when it starts,
    before its first message: sending to a topic Faust is still creating can stall its producer.
    """
    for topic in topics:
        await topic.maybe_declare()
