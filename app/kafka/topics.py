"""Every Kafka topic streamlearn reads or writes.

External (their names come from settings): ``events``, ``labels`` and ``predictions``, plus the
dead-letter topics ``<events>-dlq`` and ``<labels>-dlq``, and the enriched topic if set.
Internal (prefixed with the app id): ``rekeyed`` (raw events keyed by entity, with
``STREAMLEARN_REKEY=1``), ``join`` (parked features and labels keyed by event id), ``scoring``
(joined labels, one partition per model shard). Raw topics are read as bytes so that a malformed
message reaches the dead-letter topic unchanged.
"""

from __future__ import annotations

from app.faust_app import app
from app.settings import settings


def _internal(name: str) -> str:
    return f"{settings.id}-{name}"


# internal=True makes Faust create a topic (if missing) with STREAMLEARN_PARTITIONS partitions
# and STREAMLEARN_REPLICATION replicas instead of relying on the broker's auto-creation.
events = app.topic(
    settings.events_topic, value_serializer="raw", key_serializer="raw", internal=True
)
labels = app.topic(
    settings.labels_topic, value_serializer="raw", key_serializer="raw", internal=True
)
events_dlq = app.topic(settings.dlq_topic, value_serializer="raw", internal=True)
labels_dlq = app.topic(settings.labels_dlq_topic, value_serializer="raw", internal=True)
predictions = app.topic(settings.predictions_topic, internal=True)

rekeyed = app.topic(
    _internal("rekeyed"), value_serializer="raw", key_serializer="raw", internal=True
)
scoring = app.topic(_internal("scoring"), internal=True)
join = app.topic(_internal("join"), internal=True)


async def declare(*topics) -> None:
    """Create ``topics`` if missing. Each agent calls it for the topics it writes, when it starts,
    before its first message: sending to a topic Faust is still creating can stall its producer.
    """
    for topic in topics:
        await topic.maybe_declare()


#: every event as the model saw it (STREAMLEARN_ENRICHED_TOPIC), or None
enriched = app.topic(settings.enriched_topic, internal=True) if settings.enriched_topic else None
