"""The prediction message as Avro (app/contracts/prediction_avro.py): the encoder's bytes are
Confluent's wire format, and fastavro and confluent-kafka's ``AvroDeserializer`` read them back
as the JSON prediction's values, each of its own type (a bool label stays a bool, an int an int),
for a binary classifier, multiclass ones and a regressor, as River's models predict them."""

import io
import json

import orjson
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_reader
from river import linear_model, naive_bayes, preprocessing

from app.contracts.prediction_avro import SCHEMA, PredictionEncoder, schema_text
from app.models.shard import _prediction

SCHEMA_ID = 258  # (two bytes of the id in use: its byte order is checked)
PARSED = parse_schema(SCHEMA)


class OneSchemaRegistry:
    """What ``AvroDeserializer`` asks of a registry client: the schema of an id."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def get_schema(self, schema_id: int, subject_name=None, fmt=None) -> Schema:
        self.asked.append(schema_id)
        return Schema(schema_text(), "AVRO")


def typed(value):
    """``value`` with the type of every scalar beside it (True == 1 in Python; here they differ)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def as_json(record: dict) -> dict:
    """A decoded Avro record in the JSON prediction's shape (``proba`` as ``[[label, p], ...]``)."""
    proba = record["proba"]
    return {**record, "proba": None if proba is None else [[d["label"], d["p"]] for d in proba]}


def fastavro_read(raw: bytes) -> dict:
    assert raw[0] == 0 and int.from_bytes(raw[1:5], "big") == SCHEMA_ID
    return schemaless_reader(io.BytesIO(raw[5:]), PARSED, None)


def predictions_of(model, rows, name: str, proba: bool) -> list[dict]:
    """The prediction messages of ``model`` over ``rows``, test then train, as the shard makes
    them (the first one before anything is learned)."""
    out = []
    for i, (x, y) in enumerate(rows):
        y_pred = model.predict_proba_one(x) if proba else model.predict_one(x)
        event = {"id": f"e{i}", "key": None if i % 2 else f"k{i}", "ts": 1772352000.0 + i}
        out.append(_prediction(event, name, i // 3, y_pred, None if i == 0 else 1.5 + i))
        model.learn_one(x, y)
    return out


XS = [{"a": float(i % 7), "b": float(i % 3) - 1.0} for i in range(12)]
KINDS = {
    "binary, bool labels": (
        preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        [(x, x["a"] > 3) for x in XS],
        True,
    ),
    "multiclass, string labels": (
        naive_bayes.GaussianNB(),
        [(x, "abc"[int(x["a"]) % 3]) for x in XS],
        True,
    ),
    "multiclass, int labels": (
        naive_bayes.GaussianNB(),
        [(x, int(x["b"]) * 7) for x in XS],  # -7, 0, 7: a negative one among them
        True,
    ),
    "regressor": (
        preprocessing.StandardScaler() | linear_model.LinearRegression(),
        [(x, 2.5 * x["a"] - x["b"]) for x in XS],
        False,
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_fastavro_and_avro_deserializer_read_the_json_prediction_s_values(kind):
    model, rows, proba = KINDS[kind]
    predictions = predictions_of(model, rows, "m", proba)
    encode = PredictionEncoder(SCHEMA_ID)
    registry = OneSchemaRegistry()
    # (the topic strategy: no association lookup, which a real registry client makes)
    deserialize = AvroDeserializer(registry, conf={"subject.name.strategy.type": "TOPIC"})
    context = SerializationContext("predictions", MessageField.VALUE)
    for prediction in predictions:
        raw = encode(prediction)
        json_values = orjson.loads(orjson.dumps(prediction))
        assert typed(as_json(fastavro_read(raw))) == typed(json_values)
        assert typed(as_json(deserialize(raw, context))) == typed(json_values)
    # the id it asked the registry for, each message: the one in the header
    assert registry.asked == [SCHEMA_ID] * len(predictions)
    last = predictions[-1]
    if proba:  # the stream had what each kind must show: labels of their type, probabilities
        label_type = type(rows[0][1])
        assert type(last["y_pred"]) is label_type and len(last["proba"]) >= 2
    else:
        assert type(last["y_pred"]) is float and last["proba"] is None


def test_the_bytes_are_the_wire_format_header_then_each_field_in_the_schema_s_order():
    prediction = {
        "id": "e1",
        "key": "k",
        "model": "lr",
        "version": 64,
        "y_pred": True,
        "proba": [[False, 0.25], [True, 0.75]],
        "ts": 2.0,
        "latency_ms": None,
    }
    assert (
        PredictionEncoder(SCHEMA_ID)(prediction)
        == (
            b"\x00\x00\x00\x01\x02"  # magic byte, id 258 big-endian
            b"\x04e1"  # id: length 2 (zig-zag 4), bytes
            b"\x02\x02k"  # key: branch 1 (string), length 1
            b"\x04lr"  # model
            b"\x80\x01"  # version 64: zig-zag 128, two varint bytes
            b"\x02\x01"  # y_pred: branch 1 (boolean), true
            b"\x02\x04"  # proba: branch 1 (array), a block of 2 items
            b"\x02\x00" + b"\x00\x00\x00\x00\x00\x00\xd0?"  # {label: false, p: 0.25}
            b"\x02\x01" + b"\x00\x00\x00\x00\x00\x00\xe8?"  # {label: true, p: 0.75}
            b"\x00"  # the end of the array
            b"\x00\x00\x00\x00\x00\x00\x00@"  # ts 2.0
            b"\x00"  # latency_ms: null
        )
    )


def test_values_past_one_varint_byte_and_every_label_type_round_trip():
    long_label = "é" * 70  # 140 bytes: a two-byte length
    prediction = {
        "id": "évènement-" + "x" * 100,
        "key": "k" * 64,
        "model": "m" * 64,
        "version": 10**12,
        "y_pred": -(2**63),
        "proba": [[long_label, 0.5], [2**63 - 1, 0.25], [1.5, 0.125], [None, 0.0], [True, 1.0]],
        "ts": -1.25,
        "latency_ms": 0.001,
    }
    raw = PredictionEncoder(SCHEMA_ID)(prediction)
    assert typed(as_json(fastavro_read(raw))) == typed(prediction)
    # a classifier that has learned nothing: no label, no probabilities (an empty array)
    nothing = {**prediction, "y_pred": None, "proba": [], "key": None, "latency_ms": None}
    raw = PredictionEncoder(SCHEMA_ID)(nothing)
    assert typed(as_json(fastavro_read(raw))) == typed(nothing)


def test_a_label_an_avro_long_cannot_hold_or_of_another_type_is_refused_with_the_reason():
    base = {"id": "e", "key": None, "model": "m", "version": 0, "proba": None, "ts": 0.0}
    encode = PredictionEncoder(SCHEMA_ID)
    with pytest.raises(ValueError, match=r"^9223372036854775808 does not fit an Avro long$"):
        encode({**base, "y_pred": 2**63, "latency_ms": None})
    refusal = r"^a label must be a bool, int, float or string, not dict$"
    with pytest.raises(TypeError, match=refusal):
        encode({**base, "y_pred": {"a": 1}, "latency_ms": None})


def test_the_schema_text_is_the_same_each_time_and_names_every_json_field():
    assert schema_text() == schema_text()
    fields = [f["name"] for f in json.loads(schema_text())["fields"]]
    assert fields == ["id", "key", "model", "version", "y_pred", "proba", "ts", "latency_ms"]
    event = {"id": "e", "key": None, "ts": 0.0}
    assert list(_prediction(event, "m", 0, 1.0, None)) == fields
