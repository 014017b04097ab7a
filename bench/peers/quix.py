"""Peer: a Quix Streams Application, the work in a StreamingDataFrame ``.update``.

    python bench/peers/quix.py --topic T --events N --model lr [--guarantee exactly-once]

The backlog's values are read as raw bytes (``value_deserializer="bytes"``) so that the JSON is
decoded by the same ``orjson.loads`` as in every other peer. The app stops through Quix's own
stop condition, ``app.run(count=N, timeout=idle)``: Quix counts the outputs of the dataframe
(one per event here, ``collect=False`` so none is kept) and leaves its loop after the N-th,
committing the offsets (or the transaction, with exactly-once) on the way out.
"""

from __future__ import annotations

import sys
import tempfile

from common import Learner, parser, unique_id
from quixstreams import Application

GUARANTEES = ("at-least-once", "exactly-once")


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--guarantee", choices=GUARANTEES, default="at-least-once")
    args = p.parse_args()
    learner = Learner(args.model, args.events)
    system = f"quixstreams {args.guarantee}"
    with tempfile.TemporaryDirectory(prefix="quix-peer-state-") as state_dir:
        app = Application(
            broker_address=args.broker,
            consumer_group=unique_id("quix"),
            auto_offset_reset="earliest",
            processing_guarantee=args.guarantee,
            state_dir=state_dir,
            loglevel="WARNING",
        )
        topic = app.topic(args.topic, value_deserializer="bytes")
        sdf = app.dataframe(topic)
        sdf.update(learner.process)
        app.run(count=args.events, timeout=args.idle_timeout, collect=False)
    return learner.report(system)


if __name__ == "__main__":
    sys.exit(main())
