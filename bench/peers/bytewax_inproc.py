"""The Bytewax peer's dataflow in-process, without Kafka: what ``bench/instructions.py --peers``
counts per event of Bytewax (run by it under callgrind, with the peers' Python).

    python bench/peers/bytewax_inproc.py ROWS --warm-up W [--callgrind]

ROWS: a file of Kafka keys and JSON events, ``key value`` a line (bench/instructions.py writes
workloads.make's, keyed by event id as in the bench's backlog). The
flow is bytewax_flow.py's: a source of ``KafkaSourceMessage`` (built per event here, as
Bytewax's KafkaSource builds one per consumed message, in batches of 1,000 as its default
``batch_size``), ``op.map`` to a ``KafkaSinkMessage`` of ``Learner.process``, and a sink (a
list: no producer). The first W rows go through one run of the flow (warm-up), the rest
through a second, which callgrind instruments alone with ``--callgrind``. What this leaves out
of the Kafka peer: librdkafka's fetch and produce, and KafkaSink's ``produce`` call per message.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from bytewax import operators as op
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main
from common import Learner

#: Bytewax's KafkaSource default batch_size (messages per ``next_batch``)
BATCH = 1000


def messages(rows: list[tuple[bytes, bytes]], first: int, timestamp_ms: int):
    """The rows as KafkaSourceMessages, built one by one as the flow reads them."""
    for i, (key, raw) in enumerate(rows):
        yield KafkaSourceMessage(
            key=key,
            value=raw,
            topic="events",
            headers=[],
            latency=None,
            offset=first + i,
            partition=0,
            timestamp=(1, timestamp_ms),
        )


def flow(rows: list[tuple[bytes, bytes]], first: int, learner: Learner, out: list) -> Dataflow:
    process = learner.process
    timestamp_ms = int(time.time() * 1000)
    dataflow = Dataflow("bytewax-inproc")
    msgs = op.input("in", dataflow, TestingSource(messages(rows, first, timestamp_ms), BATCH))
    predictions = op.map(
        "learn", msgs, lambda msg: KafkaSinkMessage(msg.key, process(msg.value, msg.timestamp[1]))
    )
    op.output("out", predictions, TestingSink(out))
    return dataflow


def control(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], capture_output=True
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", type=Path)
    p.add_argument("--warm-up", type=int, required=True)
    p.add_argument("--callgrind", action="store_true")
    args = p.parse_args()
    rows = [tuple(line.split(b" ", 1)) for line in args.rows.read_bytes().splitlines()]
    learner = Learner("lr", len(rows))
    out: list = []
    run_main(flow(rows[: args.warm_up], 0, learner, out))
    if args.callgrind:
        control(True)
    run_main(flow(rows[args.warm_up :], args.warm_up, learner, out))
    if args.callgrind:
        control(False)
    if len(out) != len(rows) or not learner.done:
        raise SystemExit(f"bytewax in-process: {len(out)} predictions for {len(rows)} rows")


if __name__ == "__main__":
    main()
