"""Avro in Confluent's wire format (app/contracts/avro.py): the header's refusals, each Avro type
as the mapping gets it, schemas parsed once, and the mapping on a decoded record."""

import datetime as dt
import decimal
import io
import uuid

import orjson
import pytest
from fastavro import parse_schema, schemaless_writer

from app.contracts.avro import BYTES, FIXED, AvroDecoder, UnknownSchema, wire_id
from app.contracts.mapping import EventMapping, LabelMapping, Origin
from app.contracts.records import Malformed

UTC = dt.UTC
TS_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
TS_MICROS = {"type": "long", "logicalType": "timestamp-micros"}
#: every kind of field the issue names, and a few more
PAYMENT = {
    "type": "record",
    "name": "Payment",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["CARD", "IBAN"]}},
        {"name": "at", "type": TS_MILLIS},
        {"name": "at_us", "type": TS_MICROS},
        {"name": "seen", "type": ["null", TS_MILLIS], "default": None},
        {
            "name": "price",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        },
        {
            "name": "rate",
            "type": {
                "type": "fixed",
                "name": "Rate",
                "size": 4,
                "logicalType": "decimal",
                "precision": 8,
                "scale": 3,
            },
        },
        {"name": "blob", "type": "bytes"},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
        {"name": "maybe_blob", "type": ["null", "bytes"], "default": None},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {
            "name": "card",
            "type": {
                "type": "record",
                "name": "Card",
                "fields": [
                    {"name": "id", "type": "string"},
                    {"name": "issued", "type": TS_MILLIS},
                    {"name": "tier", "type": "Kind"},
                ],
            },
        },
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "stamps", "type": {"type": "map", "values": TS_MILLIS}},
        {"name": "online", "type": "boolean"},
        {"name": "n", "type": "long"},
    ],
}
AT_MS = 1_772_352_902_123
AT = dt.datetime(2026, 3, 1, 8, 15, 2, 123000, tzinfo=UTC)
PAYMENT_VALUE = {
    "id": "p-1",
    "amount": None,
    "note": "gift",
    "kind": "IBAN",
    "at": AT,
    "at_us": dt.datetime(2026, 3, 1, 8, 15, 2, 123456, tzinfo=UTC),
    "seen": AT + dt.timedelta(milliseconds=1),
    "price": decimal.Decimal("12.34"),
    "rate": decimal.Decimal("1.234"),
    "blob": b"\x00\x01",
    "hash": b"ab",
    "maybe_blob": b"\x02",
    "day": dt.date(2026, 3, 1),
    "ref": uuid.UUID("6f1c7b1e-3c1b-4c4a-9a66-0c6c1b1b1b1b"),
    "card": {"id": "c-3", "issued": AT, "tier": "CARD"},
    "tags": ["a", "b"],
    "stamps": {"first": AT},
    "online": True,
    "n": 2**40,
}


def wire(schema_id: int, schema: dict, value: dict) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\x00" + schema_id.to_bytes(4, "big"))
    schemaless_writer(buffer, parse_schema(schema), value)
    return buffer.getvalue()


def decoder_of(schemas: dict[int, dict]) -> AvroDecoder:
    decoder = AvroDecoder()
    for schema_id, schema in schemas.items():
        decoder.add(schema_id, orjson.dumps(schema).decode())
    return decoder


# -- the wire format -------------------------------------------------------------------------


def test_the_schema_id_is_the_four_bytes_after_the_magic_byte_big_endian():
    assert wire_id(b"\x00\x01\x02\x03\x04") == 0x01020304
    assert wire_id(b"\x00\x00\x00\x00\x07" + b"\x02") == 7


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message (no value)"),
        (
            b"",
            "not in Confluent's Avro wire format: 0 bytes, shorter than its 5-byte header "
            "(magic byte 0, 4-byte schema id)",
        ),
        (
            b"\x00\x00\x00\x01",
            "not in Confluent's Avro wire format: 4 bytes, shorter than its 5-byte header "
            "(magic byte 0, 4-byte schema id)",
        ),
        (
            b"\x01\x00\x00\x00\x07\x02",
            "not in Confluent's Avro wire format: the first byte is 0x01, not the magic byte 0",
        ),
        (
            b'{"id": "e1", "ts": 1}',
            "not in Confluent's Avro wire format: the first byte is 0x7b, not the magic byte 0 "
            "(it looks like JSON)",
        ),
    ],
)
def test_a_message_not_in_the_wire_format_is_refused_with_the_reason(raw, reason):
    with pytest.raises(Malformed) as error:
        AvroDecoder().decode(raw)
    assert str(error.value) == reason


# -- each Avro type as the mapping gets it ---------------------------------------------------


def test_each_avro_type_decodes_to_what_json_would_have_given():
    decoder = decoder_of({5: PAYMENT})
    assert decoder.decode(wire(5, PAYMENT, PAYMENT_VALUE)) == {
        "id": "p-1",
        "amount": None,  # a null union: kept as None, which the mapping takes as absent
        "note": "gift",
        "kind": "IBAN",  # enum: its symbol
        "at": AT_MS / 1000.0,  # timestamp-millis: epoch seconds, as epoch_ms makes of JSON
        "at_us": 1_772_352_902_123_456 / 1e6,
        "seen": (AT_MS + 1) / 1000.0,  # a nullable timestamp
        "price": 12.34,  # decimal: the nearest float
        "rate": 1.234,
        "blob": BYTES,  # bytes and fixed: markers
        "hash": FIXED,
        "maybe_blob": BYTES,
        "day": "2026-03-01",
        "ref": "6f1c7b1e-3c1b-4c4a-9a66-0c6c1b1b1b1b",
        "card": {"id": "c-3", "issued": AT_MS / 1000.0, "tier": "CARD"},  # nested, named type
        "tags": ["a", "b"],
        "stamps": {"first": AT_MS / 1000.0},
        "online": True,
        "n": 2**40,
    }


@pytest.mark.parametrize(
    "millis",
    [0, 1, 999, 1_772_352_902_123, 1_772_352_902_001, 1_767_225_601_461, 253_402_300_799_999],
)
def test_a_timestamp_is_exactly_the_float_json_epoch_ms_gives(millis):
    schema = {"type": "record", "name": "T", "fields": [{"name": "t", "type": TS_MILLIS}]}
    micro = {"type": "record", "name": "U", "fields": [{"name": "t", "type": TS_MICROS}]}
    decoder = decoder_of({1: schema, 2: micro})
    value = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=millis)
    assert decoder.decode(wire(1, schema, {"t": value}))["t"] == millis / 1000.0
    assert decoder.decode(wire(2, micro, {"t": value}))["t"] == millis * 1000 / 1e6


def test_a_union_of_several_branches_is_converted_by_its_value():
    """A timestamp beside another long-like branch, bytes and fixed beside strings and ints:
    each branch converted as its own type."""
    schema = {
        "type": "record",
        "name": "M",
        "fields": [
            {"name": "when", "type": ["null", "string", TS_MILLIS]},
            {"name": "at", "type": TS_MILLIS},
            {"name": "raw", "type": ["null", "string", "bytes"]},
            {"name": "h", "type": ["null", "int", {"type": "fixed", "name": "H", "size": 1}]},
        ],
    }
    decoder = decoder_of({3: schema})
    first = {"when": AT, "at": AT, "raw": b"x", "h": b"z"}
    second = {"when": "soon", "at": AT, "raw": "text", "h": 4}
    assert decoder.decode(wire(3, schema, first)) == {
        "when": AT_MS / 1000.0,
        "at": AT_MS / 1000.0,
        "raw": BYTES,
        "h": FIXED,
    }
    assert decoder.decode(wire(3, schema, second)) == {
        "when": "soon",
        "at": AT_MS / 1000.0,
        "raw": "text",
        "h": 4,
    }


def test_a_recursive_schema_is_converted_at_every_depth():
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "at", "type": TS_MILLIS},
            {"name": "next", "type": ["null", "Node"], "default": None},
        ],
    }
    decoder = decoder_of({4: schema})
    value = {"at": AT, "next": {"at": AT + dt.timedelta(seconds=1), "next": None}}
    assert decoder.decode(wire(4, schema, value)) == {
        "at": AT_MS / 1000.0,
        "next": {"at": (AT_MS + 1000) / 1000.0, "next": None},
    }


def test_a_schema_with_nothing_to_convert_gives_fastavro_s_record():
    schema = {
        "type": "record",
        "name": "P",
        "fields": [
            {"name": "amount", "type": ["null", "double"]},
            {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}},
        ],
    }
    decoder = decoder_of({7: schema})
    assert decoder.decode(wire(7, schema, {"amount": 3.5, "kind": "B"})) == {
        "amount": 3.5,
        "kind": "B",
    }


# -- schemas: given once, by id ----------------------------------------------------------------


def test_each_writer_schema_is_parsed_once_and_messages_of_two_versions_decode_each_with_its_own():
    v1 = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "int"}]}
    v2 = {**v1, "fields": [*v1["fields"], {"name": "b", "type": "string", "default": "-"}]}
    decoder = decoder_of({1: v1, 2: v2})
    parsed = decoder.schemas[1]
    assert [decoder.decode(wire(1, v1, {"a": i})) for i in range(3)] == [
        {"a": 0},
        {"a": 1},
        {"a": 2},
    ]
    assert decoder.decode(wire(2, v2, {"a": 3, "b": "new"})) == {"a": 3, "b": "new"}
    assert decoder.schemas[1] is parsed


def test_an_id_not_given_yet_is_unknown_and_missing_lists_the_ids_of_a_batch_to_fetch():
    decoder = decoder_of({1: {"type": "record", "name": "E", "fields": []}})
    with pytest.raises(UnknownSchema) as error:
        decoder.decode(b"\x00\x00\x00\x00\x09")
    assert error.value.schema_id == 9
    batch = [b"\x00\x00\x00\x00\x01", b"\x00\x00\x00\x00\x09", None, b"{}", b"\x00\x00\x01\x00\x00"]
    assert decoder.missing(batch) == {9, 65536}


@pytest.mark.parametrize(
    ("schema", "schema_type", "references", "reason"),
    [
        ("{not json", None, (), "JSONDecodeError"),
        ('{"type": "record", "name": "E", "fields": [{"name": "a"}]}', None, (), "missing 'type'"),
        ('{"type": "nope"}', None, (), "UnknownType"),
        ('{"type": "string"}', "PROTOBUF", (), "it is a PROTOBUF schema, not Avro"),
        ('{"type": "string"}', None, ({"name": "x"},), "references"),
    ],
)
def test_a_schema_that_cannot_be_used_refuses_its_messages_with_the_reason(
    schema, schema_type, references, reason
):
    decoder = AvroDecoder()
    decoder.add(6, schema, schema_type, references)
    assert decoder.known(6)
    with pytest.raises(Malformed) as error:
        decoder.decode(b"\x00\x00\x00\x00\x06\x00")
    assert str(error.value).startswith("the writer schema (id 6) cannot be used: ")
    assert reason in str(error.value)


def test_a_body_that_is_not_avro_of_its_schema_or_not_a_record_is_refused():
    schema = {"type": "record", "name": "E", "fields": [{"name": "s", "type": "string"}]}
    decoder = decoder_of({1: schema, 2: {"type": "string"}})
    with pytest.raises(Malformed, match=r"^not Avro of schema id 1: EOFError"):
        decoder.decode(b"\x00\x00\x00\x00\x01\x10ab")  # a string of 8 bytes, 2 given
    with pytest.raises(Malformed, match=r"^schema id 2 is not a record: .* decodes to str$"):
        decoder.decode(wire(2, {"type": "string"}, "x"))  # type: ignore[arg-type]


def test_a_refused_id_is_refused_until_forgotten():
    decoder = AvroDecoder()
    decoder.refuse(3, "schema id 3 is not known to the schema registry")
    with pytest.raises(Malformed, match="^schema id 3 is not known to the schema registry$"):
        decoder.decode(b"\x00\x00\x00\x00\x03")
    decoder.forget(3)
    assert decoder.missing([b"\x00\x00\x00\x00\x03"]) == {3}


# -- the mapping on a decoded record -----------------------------------------------------------

ORIGIN = Origin("payments", 0, 12, b"c-3", 1_767_225_600_500)


def test_the_mapping_reads_a_decoded_record_as_the_same_json_and_skips_bytes_and_fixed():
    decoder = decoder_of({5: PAYMENT})
    table = {"format": "avro", "id": "id", "key": "card.id", "time": "at"}
    table["exclude"] = ["at_us", "tags"]  # (a list is no feature, in JSON either)
    mapping = EventMapping.from_config(table, "payments", "[events]")
    assert mapping.fields.format == "avro"
    event = mapping.read_value(decoder.decode(wire(5, PAYMENT, PAYMENT_VALUE)), ORIGIN)
    assert event == {
        "id": "p-1",
        "key": "c-3",
        "ts": AT_MS / 1000.0,
        "x": {
            # amount is null: absent; blob, hash, maybe_blob (bytes, fixed): skipped
            "note": "gift",
            "kind": "IBAN",
            "seen": (AT_MS + 1) / 1000.0,
            "price": 12.34,
            "rate": 1.234,
            "day": "2026-03-01",
            "ref": "6f1c7b1e-3c1b-4c4a-9a66-0c6c1b1b1b1b",
            "card.issued": AT_MS / 1000.0,
            "card.tier": "CARD",
            "stamps.first": AT_MS / 1000.0,
            "online": True,
            "n": 2**40,
        },
    }


def test_a_mapping_naming_a_bytes_or_fixed_field_dead_letters_with_the_reason():
    decoder = decoder_of({5: PAYMENT})
    record = decoder.decode(wire(5, PAYMENT, PAYMENT_VALUE))
    for path, kind in (("blob", "bytes"), ("hash", "fixed"), ("maybe_blob", "bytes")):
        table = {"format": "avro", "id": "id", "features": ["online", path]}
        mapping = EventMapping.from_config(table, "payments", "[events]")
        with pytest.raises(Malformed) as error:
            mapping.read_value(record, ORIGIN)
        assert str(error.value) == f"field {path!r} is Avro {kind}: it cannot be a feature"


def test_a_null_in_a_listed_nullable_field_is_an_absent_feature_not_a_missing_field():
    decoder = decoder_of({5: PAYMENT})
    record = decoder.decode(wire(5, PAYMENT, PAYMENT_VALUE))
    table = {"format": "avro", "id": "id", "features": ["amount", "kind", "card.tier"]}
    event = EventMapping.from_config(table, "payments", "[events]").read_value(record, ORIGIN)
    assert event["x"] == {"kind": "IBAN", "card.tier": "CARD"}


def test_a_label_mapping_reads_a_decoded_record():
    schema = {
        "type": "record",
        "name": "Chargeback",
        "fields": [
            {"name": "order", "type": "string"},
            {"name": "fraud", "type": "boolean"},
            {"name": "at", "type": TS_MILLIS},
        ],
    }
    decoder = decoder_of({8: schema})
    table = {"format": "avro", "id": "order", "label": "fraud", "time": "at"}
    mapping = LabelMapping.from_config(table, "chargebacks", "[labels]")
    record = decoder.decode(wire(8, schema, {"order": "o-1", "fraud": True, "at": AT}))
    assert mapping.read_value(record, ORIGIN) == {"id": "o-1", "y": True, "ts": AT_MS / 1000.0}
