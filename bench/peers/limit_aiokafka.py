"""The limit: a bare aiokafka client that consumes, learns and writes each prediction, at best.

python bench/peers/limit_aiokafka.py --topic T --output P --events N --model lr

What a well-written bare Python client does with the benchmark's work: it reads the backlog
``getmany(max_records=5000)`` at a time (no consumer group: the topic's partitions assigned and
read from the beginning, as a streamlearn worker's engine reads its own), does the per-event
work of every peer (common.py), and appends each prediction to a record batch of its own
(``producer.create_batch()``), handed to the producer (``send_batch``) when full and at the end
of each read: no per-message ``send()``. The producer is set as a streamlearn worker's (acks=all,
idempotent, linger 0, 512 KiB batches). The driver runs it with streamlearn's own Python, so
that it needs none of the peers' frameworks.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import IdleClock, Learner, parser

SYSTEM = "aiokafka, record batches (the limit)"


async def drain(args, learner: Learner) -> None:
    process = learner.process
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.broker,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.broker,
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        max_batch_size=512 * 1024,
    )
    await consumer.start()
    await producer.start()
    delivered: list[asyncio.Future] = []
    try:
        partitions = sorted(await producer.partitions_for(args.topic))
        consumer.assign([TopicPartition(args.topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        n_out = len(await producer.partitions_for(args.output))
        create, send_batch, output = producer.create_batch, producer.send_batch, args.output
        idle = IdleClock(args.idle_timeout)
        while not learner.done:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batches:
                if idle.expired():
                    break
                continue
            idle.got()
            for tp, msgs in batches.items():
                out = tp.partition % n_out
                batch = create()
                append = batch.append
                for msg in msgs[: learner.left]:
                    key, value = msg.key, process(msg.value, msg.timestamp)
                    if append(timestamp=None, key=key, value=value) is None:  # full
                        delivered.append(await send_batch(batch, output, partition=out))
                        batch = create()
                        append = batch.append
                        append(timestamp=None, key=key, value=value)
                if batch.record_count():
                    delivered.append(await send_batch(batch, output, partition=out))
        await asyncio.gather(*delivered)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    learner = Learner(args.model, args.events)
    asyncio.run(drain(args, learner))
    return learner.report(SYSTEM)


if __name__ == "__main__":
    sys.exit(main())
