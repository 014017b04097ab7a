"""Peer: a bare confluent-kafka Consumer loop, ``consume(num_messages=5000)``.

python bench/peers/plain_confluent.py --topic T --events N --model lr
"""

from __future__ import annotations

import sys

from common import IdleClock, Learner, parser, unique_id
from confluent_kafka import Consumer, KafkaException

SYSTEM = "confluent-kafka"


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    learner = Learner(args.model, args.events)
    process = learner.process
    consumer = Consumer(
        {
            "bootstrap.servers": args.broker,
            "group.id": unique_id("confluent"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([args.topic])
    idle = IdleClock(args.idle_timeout)
    try:
        while not learner.done:
            msgs = consumer.consume(num_messages=5000, timeout=1.0)
            if not msgs:
                if idle.expired():
                    break
                continue
            idle.got()
            for msg in msgs[: learner.left]:
                if msg.error():
                    raise KafkaException(msg.error())
                process(msg.value())
    finally:
        consumer.close()
    return learner.report(SYSTEM)


if __name__ == "__main__":
    sys.exit(main())
