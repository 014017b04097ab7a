"""What writing a prediction as Avro costs against JSON, per message.

    python bench/avro_encode.py [--n 20000] [--repeats 7]

Three predictions as the engine makes them (a binary classifier's with ``proba``, a three-class
one's, a regressor's), encoded ``--n`` times each: ``orjson.dumps`` (the JSON path), the
hand-written :class:`app.contracts.prediction_avro.PredictionEncoder`, and fastavro's
``schemaless_writer`` with the parsed schema into a fresh ``BytesIO`` plus the 5-byte header.
Prints the best of ``--repeats`` passes in microseconds per message; each encoder's bytes are
first checked to decode (fastavro) to the same record. Nothing touches Kafka.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import orjson
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from app.contracts.prediction_avro import SCHEMA, PredictionEncoder

PREDICTIONS = {
    "binary": {
        "id": "e-12345",
        "key": "card-0042",
        "model": "lr",
        "version": 3,
        "y_pred": True,
        "proba": [[False, 0.18359375], [True, 0.81640625]],
        "ts": 1772352902.123,
        "latency_ms": 12.345,
    },
    "multiclass": {
        "id": "e-12346",
        "key": None,
        "model": "tree",
        "version": 0,
        "y_pred": "b",
        "proba": [["a", 0.1], ["b", 0.7], ["c", 0.2]],
        "ts": 1772352903.0,
        "latency_ms": 3.2,
    },
    "regressor": {
        "id": "e-12347",
        "key": "k",
        "model": "reg",
        "version": 12,
        "y_pred": 41.875,
        "proba": None,
        "ts": 1772352904.5,
        "latency_ms": None,
    },
}


def fastavro_encoder(schema_id: int) -> Callable[[dict], bytes]:
    parsed = parse_schema(SCHEMA)
    header = b"\x00" + schema_id.to_bytes(4, "big")

    def encode(prediction: dict) -> bytes:
        record = {**prediction}
        if record["proba"] is not None:
            record["proba"] = [{"label": k, "p": p} for k, p in record["proba"]]
        out = io.BytesIO()
        out.write(header)
        schemaless_writer(out, parsed, record)
        return out.getvalue()

    return encode


def best(encode: Callable[[dict], bytes], prediction: dict, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            encode(prediction)
        times.append(time.perf_counter() - start)
    return min(times) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    parsed = parse_schema(SCHEMA)
    encoders = {
        "orjson.dumps": orjson.dumps,
        "PredictionEncoder": PredictionEncoder(1),
        "fastavro": fastavro_encoder(1),
    }
    print(f"{'us a message':<14}" + "".join(f"{name:>20}" for name in encoders))
    for kind, prediction in PREDICTIONS.items():
        for name in ("PredictionEncoder", "fastavro"):
            raw = encoders[name](prediction)
            assert raw[:5] == b"\x00\x00\x00\x00\x01", name
            decoded = schemaless_reader(io.BytesIO(raw[5:]), parsed, None)
            proba = decoded["proba"]
            decoded["proba"] = None if proba is None else [[d["label"], d["p"]] for d in proba]
            assert decoded == prediction, (name, decoded)
        rates = [best(e, prediction, args.n, args.repeats) for e in encoders.values()]
        print(f"{kind:<14}" + "".join(f"{r:>20.2f}" for r in rates))


if __name__ == "__main__":
    main()
