"""Read a whole topic once, as the commands do (``features kafka:TOPIC``, ``models``): every
partition from its beginning to its end offset when the read started.

Reads: the topic, with a consumer of no group that commits nothing (the settings' client
options: TLS, SASL). Gives its records, each partition in order (partitions interleaved). Keeps
nothing. A broker that cannot be reached, or a topic that does not exist, is a ``ClickException``
with the reason: one line from the command, no traceback.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import click
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from tqdm import tqdm

from app.compat import refresh_metadata
from app.kafka.admin import bootstrap_servers
from app.kafka.auth import client_options
from app.settings import Settings


async def records(settings: Settings, topic: str, progress: bool = True) -> AsyncIterator[Any]:
    """The records of ``topic`` up to its end offsets now (a progress bar on a terminal)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        **client_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise click.ClickException(
            f"cannot read {topic!r} from {settings.broker}: {type(exc).__name__}: {exc}"
        ) from None
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await refresh_metadata(consumer)  # a topic created after the consumer started
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise click.ClickException(f"topic {topic!r} does not exist on {settings.broker}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        left = {tp: ends[tp] for tp in tps if ends[tp] > starts[tp]}
        with bar(sum(ends[tp] - starts[tp] for tp in tps), "msg", topic, progress) as shown:
            while left:
                batches = await consumer.getmany(*left, timeout_ms=1000)
                for tp, got in batches.items():
                    for record in got:
                        if record.offset >= left.get(tp, 0):
                            continue
                        shown.update(1)
                        yield record
                for tp in list(left):
                    if await consumer.position(tp) >= left[tp]:
                        del left[tp]
                        consumer.pause(tp)
    finally:
        await consumer.stop()


def bar(total: int, unit: str, desc: str, shown: bool = True) -> tqdm:
    """A progress bar on a terminal only (stderr)."""
    disable = None if shown else True
    return tqdm(
        total=total, unit=unit, unit_scale=True, desc=desc, file=sys.stderr, disable=disable
    )
