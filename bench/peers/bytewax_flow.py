"""Peer: a Bytewax dataflow, Kafka in and out by bytewax.connectors.kafka, the work in ``map``.

    python bench/peers/bytewax_flow.py --topic T --output P --events N --model lr

The work is a ``map`` from each KafkaSourceMessage to a KafkaSinkMessage (key: the input
message's, here the event's id; value: the prediction), written by Bytewax's own KafkaSink (a
confluent-kafka Producer with its defaults, flushed after each batch it writes).

Runs single-process, single-worker in this process (``bytewax.testing.run_main``), recovery
off. Bytewax has no "stop after N items": its KafkaSource stops at the end of the topic when
``tail=False``, and a source partition ends when its ``next_batch`` raises StopIteration. So the
source here is Bytewax's own KafkaSource whose partitions share a budget of N events: each batch
is cut to what is left and the partition ends once the budget is spent, after which the
dataflow drains and ``run_main`` returns. The source reads from the earliest offset. Bytewax
assigns partitions itself, never joins a consumer group and commits nothing (its partition
consumers all use group.id "BYTEWAX_IGNORED" with auto-commit off; recovery, off here, is where it
keeps offsets), so there is no group id to make unique: every run starts at the beginning.
"""

from __future__ import annotations

import sys

from bytewax import operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.inputs import StatefulSourcePartition
from bytewax.testing import run_main
from common import Learner, parser
from confluent_kafka import OFFSET_BEGINNING

SYSTEM = "bytewax"


class _Budget:
    def __init__(self, events: int):
        self.left = events


class _CappedPartition(StatefulSourcePartition):
    """One of KafkaSource's partitions, ending once the shared budget of events is spent."""

    def __init__(self, inner: StatefulSourcePartition, budget: _Budget):
        self._inner = inner
        self._budget = budget

    def next_batch(self) -> list:
        left = self._budget.left
        if left <= 0:
            raise StopIteration()
        batch = self._inner.next_batch()
        if len(batch) > left:
            batch = batch[:left]
        self._budget.left = left - len(batch)
        return batch

    def next_awake(self):
        return self._inner.next_awake()

    def snapshot(self) -> int | None:
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class CappedKafkaSource(KafkaSource):
    """Bytewax's KafkaSource that emits at most ``events`` messages in all."""

    def __init__(self, *args, events: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._budget = _Budget(events)

    def build_part(self, step_id, for_part, resume_state) -> _CappedPartition:
        return _CappedPartition(super().build_part(step_id, for_part, resume_state), self._budget)


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    learner = Learner(args.model, args.events)
    process = learner.process
    source = CappedKafkaSource(
        [args.broker],
        [args.topic],
        tail=False,  # a backlog shorter than N ends the run instead of hanging
        starting_offset=OFFSET_BEGINNING,
        events=args.events,
    )
    flow = Dataflow("streamlearn-bench-peer")
    msgs = op.input("kafka-in", flow, source)
    predictions = op.map(
        "learn",
        msgs,
        lambda msg: KafkaSinkMessage(msg.key, process(msg.value, msg.timestamp[1])),
    )
    op.output("kafka-out", predictions, KafkaSink([args.broker], args.output))
    run_main(flow)
    return learner.report(SYSTEM)


if __name__ == "__main__":
    sys.exit(main())
