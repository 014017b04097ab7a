"""Peer: a Quix Streams Application, the work in a StreamingDataFrame ``.apply``, ``.to_topic``.

    python bench/peers/quix.py --topic T --output P --events N --model lr [--guarantee exactly-once]

The backlog's values are read as raw bytes (``value_deserializer="bytes"``) so that the JSON is
decoded by the same ``orjson.loads`` as in every other peer. ``.apply`` (with the message's
metadata, for its timestamp) returns the prediction as a dict, which ``.to_topic`` writes to the
output topic through Quix's JSON serializer (orjson, as every other peer), keyed by the input
message's key (here the event's id). The app stops through Quix's own stop condition,
``app.run(count=N, timeout=idle)``: Quix counts the outputs of the dataframe (one per event
here, ``collect=False`` so none is kept) and leaves its loop after the N-th, flushing its
producer and committing the offsets (or the transaction, with exactly-once) on the way out.
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
    predict = learner.predict
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
        output = app.topic(args.output, value_serializer="json")
        sdf = app.dataframe(topic)
        sdf = sdf.apply(
            lambda value, _key, timestamp, _headers: predict(value, timestamp), metadata=True
        )
        sdf.to_topic(output)
        app.run(count=args.events, timeout=args.idle_timeout, collect=False)
    return learner.report(system)


if __name__ == "__main__":
    sys.exit(main())
