"""Peer: a bare aiokafka loop, ``getmany(max_records=5000)``, and ``send()`` per prediction.

python bench/peers/plain_aiokafka.py --topic T --output P --events N --model lr

The ordinary aiokafka way: ``await producer.send(topic, value, key=key)`` for each prediction
(aiokafka gathers them into batches; the delivery futures are not awaited one by one), and
``flush()`` at the end. The producer is aiokafka's default but for acks="all" (a streamlearn
worker's). The limit (limit_aiokafka.py) is the same loop appending to record batches itself.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from common import IdleClock, Learner, parser, unique_id

SYSTEM = "aiokafka"


async def drain(args, learner: Learner) -> None:
    process = learner.process
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.broker,
        group_id=unique_id("aiokafka"),
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.broker, acks="all")
    await consumer.start()
    await producer.start()
    send = producer.send
    output = args.output
    idle = IdleClock(args.idle_timeout)
    try:
        while not learner.done:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batches:
                if idle.expired():
                    break
                continue
            idle.got()
            for msgs in batches.values():
                for msg in msgs[: learner.left]:
                    await send(output, process(msg.value, msg.timestamp), key=msg.key)
        await producer.flush()
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
