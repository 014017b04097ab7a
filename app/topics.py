"""Every Kafka topic streamlearn reads or writes.

External (their names come from settings): ``events``, ``labels`` and ``predictions``, plus the
dead-letter topics ``<events>-dlq`` and ``<labels>-dlq``. Internal (prefixed with the app id):
``clean`` (valid events keyed by entity), ``scoring`` (the ordered log each model shard learns
from: events to score and joined labels), ``join`` (parked features and labels keyed by event id).
Raw topics are read as bytes so that a malformed message reaches the dead-letter topic unchanged.
"""

from __future__ import annotations

from app import app, settings


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

clean = app.topic(_internal("clean"), internal=True)
scoring = app.topic(_internal("scoring"), internal=True)
join = app.topic(_internal("join"), internal=True)


@app.on_partitions_assigned.connect
async def declare_output_topics(app, assigned, **kwargs) -> None:
    """Create the topics the app writes but never reads, before any stream sends to them.

    Runs on every assignment, before recovery resumes the streams; creating an existing topic
    is a no-op.
    """
    for topic in (events_dlq, labels_dlq, predictions):
        await topic.maybe_declare()
