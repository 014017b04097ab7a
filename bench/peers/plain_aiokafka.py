"""Peer: a bare aiokafka AIOKafkaConsumer loop, ``getmany(max_records=5000)``.

python bench/peers/plain_aiokafka.py --topic T --events N --model lr
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer
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
    await consumer.start()
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
                    process(msg.value)
    finally:
        await consumer.stop()


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    learner = Learner(args.model, args.events)
    asyncio.run(drain(args, learner))
    return learner.report(SYSTEM)


if __name__ == "__main__":
    sys.exit(main())
