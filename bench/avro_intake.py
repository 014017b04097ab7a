"""What the intake's Avro branch adds to the per-event path, against the same rows as JSON.

    python bench/avro_intake.py [--events 20000] [--repeats 7]

The rows of ``bench/avro_decode.py`` (the fraud stream as a team's flat record), once as JSON and
once in Confluent's wire format, each taken by :meth:`app.contracts.intake.Intake.event` under
the same ``[events]`` mapping (``id``, ``key = "card"``, ``time = "at"``, ``label = "fraud"``),
``format = "json"`` (``time_format = "epoch_ms"``) against ``format = "avro"`` (a
``timestamp-millis``): the decode or parse, the mapping and the checks, as the engine runs them
per event. Best of ``--repeats`` passes; the events given are checked equal. Prints
microseconds per message and the difference; nothing touches Kafka or a registry.
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson
from fastavro import parse_schema

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.contracts.avro import AvroDecoder  # noqa: E402
from app.contracts.intake import Intake  # noqa: E402
from app.contracts.mapping import EventMapping, Origin  # noqa: E402
from bench.avro_decode import SCHEMA, best, rows, wire  # noqa: E402

TABLE = {"id": "id", "key": "card", "time": "at", "label": "fraud"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    data = rows(args.events)
    parsed = parse_schema(SCHEMA)
    json_rows = [orjson.dumps(r) for r in data]
    avro_rows = [wire(1, parsed, r) for r in data]
    origin = Origin("events", 0, 0, None, 0)
    as_json = EventMapping.from_config({**TABLE, "time_format": "epoch_ms"}, "events", "[events]")
    as_avro = EventMapping.from_config({**TABLE, "format": "avro"}, "events", "[events]")
    json_intake = Intake(as_json, None, 1e12, lambda y: None)
    decoder = AvroDecoder()
    decoder.add(1, orjson.dumps(SCHEMA).decode())
    avro_intake = Intake(as_avro, None, 1e12, lambda y: None, decoder)
    for j, a in zip(json_rows, avro_rows, strict=True):
        assert json_intake.event(j, origin, 0.0) == avro_intake.event(a, origin, 0.0)
    results = {
        "Intake.event, JSON": best(
            lambda m: json_intake.event(m, origin, 0.0), json_rows, args.repeats
        ),
        "Intake.event, Avro": best(
            lambda m: avro_intake.event(m, origin, 0.0), avro_rows, args.repeats
        ),
    }
    print(f"{len(data)} rows")
    for name, us in results.items():
        print(f"{name:24s} {us:6.2f} us/message")
    extra = results["Intake.event, Avro"] - results["Intake.event, JSON"]
    print(f"the Avro branch costs {extra:+.2f} us a message more than JSON")
    for rate in (30_000, 42_000):
        print(f"  at {rate:,} events/s ({1e6 / rate:.1f} us a row): {extra * rate / 1e4:.1f} %")


if __name__ == "__main__":
    main()
