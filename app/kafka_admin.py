"""Create the topics streamlearn owns with explicit partition counts and replication."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


def bootstrap_servers(broker_url: str) -> str:
    """aiokafka's bootstrap string for a Faust broker URL (``kafka://h:p;kafka://h2:p2``).

    >>> bootstrap_servers("kafka://127.0.0.1:9092;kafka://127.0.0.1:9093")
    '127.0.0.1:9092,127.0.0.1:9093'
    """
    hosts = []
    for part in broker_url.replace(",", ";").split(";"):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part)
    return ",".join(hosts)


async def ensure_topics(
    broker_url: str, names: list[str], partitions: int, replication: int
) -> None:
    """Create each of ``names`` that does not exist; warn when one exists with other partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            configs = {"min.insync.replicas": str(min(2, replication))} if replication > 1 else {}
            try:
                await admin.create_topics(
                    [NewTopic(n, partitions, replication, topic_configs=configs) for n in missing]
                )
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s (%d partitions)", missing, partitions)
        present = [n for n in names if n in existing]
        if present:
            for meta in await admin.describe_topics(present):
                n_parts = len(meta["partitions"])
                if n_parts != partitions:
                    log.warning(
                        "topic %s has %d partitions, STREAMLEARN_PARTITIONS is %d",
                        meta["topic"],
                        n_parts,
                        partitions,
                    )
    finally:
        await admin.close()
