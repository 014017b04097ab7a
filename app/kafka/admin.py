"""Create the topics streamlearn owns with explicit partition counts and replication."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    NodeNotReadyError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

log = logging.getLogger(__name__)

#: Seconds topic creation waits for a cluster that answers but has no broker ready yet (a KRaft
#: cluster just started accepts connections before it serves metadata).
READY_TIMEOUT = 20.0
_NOT_READY = (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError)


async def _served(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict]:
    """The metadata of ``names``, once Kafka serves each with a leader for every partition (or
    READY_TIMEOUT passed): a client that asks right after a creation (ours, or a worker's at the
    same moment) is told the topic does not exist, and aiokafka logs that as an ERROR."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        metas = await admin.describe_topics(names)
        pending = [
            meta["topic"]
            for meta in metas
            if meta["error_code"] != 0
            or not meta["partitions"]
            or any(p["leader"] < 0 for p in meta["partitions"])
        ]
        if not pending:
            return metas
        if time.monotonic() >= deadline:
            log.warning("topics %s are not served by Kafka yet: clients will retry", pending)
            return metas
        await asyncio.sleep(0.05)


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
    broker_url: str,
    names: list[str],
    partitions: int,
    replication: int,
    options: dict | None = None,
) -> None:
    """Create each of ``names`` that does not exist; warn when one exists with other partitions.

    ``options``: how the admin client connects (``app.kafka.auth.client_options``). A cluster
    that is still starting is waited for, up to READY_TIMEOUT seconds.
    """
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            return await _ensure_topics(broker_url, names, partitions, replication, options or {})
        except _NOT_READY as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("Kafka at %s is not ready yet (%r): retrying", broker_url, exc)
            await asyncio.sleep(0.5)


async def _ensure_topics(
    broker_url: str, names: list[str], partitions: int, replication: int, options: dict
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url), **options)
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
        for meta in await _served(admin, names):
            n_parts = len(meta["partitions"])
            if meta["topic"] in existing and n_parts != partitions:
                log.warning(
                    "topic %s has %d partitions, STREAMLEARN_PARTITIONS is %d",
                    meta["topic"],
                    n_parts,
                    partitions,
                )
    finally:
        await admin.close()
