"""What decoding Avro costs against JSON, per message, on the rows of the fraud stream.

    python bench/avro_decode.py [--events 20000] [--repeats 7]

Each event of ``FraudStream(seed=42)`` as a team's flat record would carry it (id, card, a
``timestamp-millis`` time, amount, merchant as an enum, hour, online, and a nullable label),
written once as JSON (the time in epoch ms) and once in Confluent's wire format with fastavro.
Timed, in this process, the best of ``--repeats`` passes over every row: ``orjson.loads`` of the
JSON, ``AvroDecoder.decode`` of the Avro (app/contracts/avro.py: the schema's compiled reader,
app/contracts/avro_reader.py, conversions included), the same without the timestamp (a plain
long), and fastavro's reader alone on the schema as written (its timestamps made into
datetimes, nothing converted: what the decoder used before its compiled reader). Prints
microseconds per message; nothing touches Kafka. The decoded Avro row is checked to equal the
JSON row, the time converted as ``epoch_ms`` does (ms / 1000.0).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import orjson
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from app.commands.fraud import MERCHANTS, FraudStream
from app.contracts.avro import AvroDecoder

SCHEMA = {
    "type": "record",
    "name": "Payment",
    "namespace": "bench",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "card", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "amount", "type": "double"},
        {"name": "merchant", "type": {"type": "enum", "name": "Merchant", "symbols": MERCHANTS}},
        {"name": "hour", "type": "int"},
        {"name": "online", "type": "boolean"},
        {"name": "fraud", "type": ["null", "boolean"], "default": None},
    ],
}
#: the same record with the time as a plain long: nothing for the decoder to convert
PLAIN = {**SCHEMA, "fields": [*SCHEMA["fields"][:2], {"name": "at", "type": "long"}]}
PLAIN["fields"] += SCHEMA["fields"][3:]


def rows(n: int) -> list[dict]:
    out = []
    for kind, value in FraudStream(seed=42).messages(n):
        if kind == "events":
            x = value["x"]
            out.append(
                {
                    "id": value["id"],
                    "card": value["key"],
                    "at": round(value["ts"] * 1000),
                    **x,
                    "fraud": None,
                }
            )
    return out


def wire(schema_id: int, parsed: dict, row: dict) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\x00" + schema_id.to_bytes(4, "big"))
    schemaless_writer(buffer, parsed, row)
    return buffer.getvalue()


def best(fn: Callable[[bytes], object], messages: list[bytes], repeats: int) -> float:
    """Microseconds per message, the best of ``repeats`` passes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for m in messages:
            fn(m)
        times.append(time.perf_counter() - start)
    return min(times) / len(messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    data = rows(args.events)
    decoder = AvroDecoder()
    decoder.add(1, orjson.dumps(SCHEMA).decode())
    decoder.add(2, orjson.dumps(PLAIN).decode())
    parsed, plain = parse_schema(SCHEMA), parse_schema(PLAIN)
    json_rows = [orjson.dumps(r) for r in data]
    avro_rows = [wire(1, parsed, {**r, "at": r["at"]}) for r in data]
    plain_rows = [wire(2, plain, r) for r in data]
    for row, message in zip(data, avro_rows, strict=True):  # the same values as JSON gives
        assert decoder.decode(message) == {**row, "at": row["at"] / 1000.0}, row
    results = {
        "orjson.loads (JSON)": best(orjson.loads, json_rows, args.repeats),
        "AvroDecoder.decode": best(decoder.decode, avro_rows, args.repeats),
        "AvroDecoder.decode, no timestamp": best(decoder.decode, plain_rows, args.repeats),
        "fastavro reader alone, datetimes": best(
            lambda m: schemaless_reader(io.BytesIO(m[5:]), parsed, None), avro_rows, args.repeats
        ),
    }
    size_json = sum(map(len, json_rows)) / len(json_rows)
    size_avro = sum(map(len, avro_rows)) / len(avro_rows)
    print(f"{len(data)} rows; JSON {size_json:.0f} bytes, Avro {size_avro:.0f} bytes a row")
    for name, us in results.items():
        print(f"{name:36s} {us:6.2f} us/message")
    extra = results["AvroDecoder.decode"] - results["orjson.loads (JSON)"]
    print(f"Avro costs {extra:+.2f} us a message more than JSON")


if __name__ == "__main__":
    main()
