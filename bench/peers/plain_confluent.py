"""Peer: a bare confluent-kafka loop, ``Consumer.consume(num_messages=5000)``, and a Producer.

python bench/peers/plain_confluent.py --topic T --output P --events N --model lr

Each prediction goes out by ``Producer.produce`` (librdkafka batches and sends them from its
own thread), ``poll(0)`` after each read serves the delivery reports, and ``flush()`` at the end
waits for the last ones. The producer keeps librdkafka's defaults (acks=all, linger.ms=5).
"""

from __future__ import annotations

import sys

from common import IdleClock, Learner, parser, unique_id
from confluent_kafka import Consumer, KafkaException, Producer

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
    producer = Producer({"bootstrap.servers": args.broker})
    errors: list = []

    def delivered(err, _msg) -> None:
        if err is not None:
            errors.append(err)

    produce = producer.produce
    output = args.output
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
                value = process(msg.value(), msg.timestamp()[1])
                while True:
                    try:
                        produce(output, value, msg.key(), on_delivery=delivered)
                        break
                    except BufferError:  # librdkafka's queue is full: let it send, then again
                        producer.poll(1.0)
            producer.poll(0)
        left = producer.flush(60)
    finally:
        consumer.close()
    if left or errors:
        print(f"{SYSTEM}: {left} predictions undelivered, errors: {errors[:3]}", file=sys.stderr)
        return 1
    return learner.report(SYSTEM)


if __name__ == "__main__":
    sys.exit(main())
