"""The intake's Avro branch: wire-format messages decoded with their writer schemas, then mapped."""

import io
import json

import pytest
from fastavro import parse_schema, schemaless_writer

from app.contracts.avro import AvroDecoder, UnknownSchema
from app.contracts.intake import DEAD_LETTERS, DELETES, TOMBSTONES, Intake
from app.contracts.mapping import EventMapping, MappingError, Origin
from app.step import MemoryWindows, Refused, Step

V1 = {
    "type": "record",
    "name": "Payment",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "card", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["CARD", "IBAN"]}},
        {"name": "fraud", "type": ["null", "boolean"], "default": None},
    ],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "channel", "type": "string", "default": "web"}]}
ORIGIN = Origin("payments", 0, 41, b"kafka-key", 1_000)


def wire(schema_id: int, schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(schema), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + out.getvalue()


def payment(i: int, **more) -> dict:
    record = {"id": f"p{i}", "card": "c1", "at": 1_772_352_902_123 + i, "amount": 2.5 * i}
    return {**record, "kind": "IBAN", "fraud": None, **more}


def intake(**mapping) -> Intake:
    table = {"format": "avro", "id": "id", "key": "card", "time": "at", "label": "fraud", **mapping}
    decoder = AvroDecoder()
    decoder.add(1, json.dumps(V1))
    decoder.add(2, json.dumps(V2))
    decoder.refuse(9, "schema id 9 is not known to the schema registry (HTTP 404)")
    return Intake(
        EventMapping.from_config(table, "payments", "[events]"), None, 3600.0, _any, decoder
    )


def _any(y) -> None:
    return None


def test_avro_messages_are_decoded_with_their_own_writer_schema_and_mapped():
    checks = intake()
    v1 = wire(1, V1, payment(1, fraud=True))
    v2 = wire(2, V2, payment(2, amount=None, channel="app"))
    assert checks.event(v1, ORIGIN, 2e9) == {
        "id": "p1",
        "key": "c1",
        "ts": 1_772_352_902.124,  # timestamp-millis / 1000.0, as epoch_ms in JSON
        "x": {"amount": 2.5, "kind": "IBAN"},
        "y": True,
    }
    # v2 adds a field: the new feature from then on; a null union: an absent feature
    assert checks.event(v2, ORIGIN, 2e9) == {
        "id": "p2",
        "key": "c1",
        "ts": 1_772_352_902.125,
        "x": {"kind": "IBAN", "channel": "app"},
    }


def test_what_is_not_in_the_wire_format_or_refused_by_the_registry_is_a_dead_letter():
    checks = intake()
    assert checks.event(b"\x00\x00\x01", ORIGIN, 2e9) == (
        DEAD_LETTERS,
        "not in Confluent's Avro wire format: 3 bytes, shorter than its 5-byte header (magic "
        "byte 0, 4-byte schema id)",
    )
    assert checks.event(b"\x01\x00\x00\x00\x01\x02", ORIGIN, 2e9) == (
        DEAD_LETTERS,
        "not in Confluent's Avro wire format: the first byte is 0x01, not the magic byte 0",
    )
    refused = wire(9, V1, payment(3))
    assert checks.event(refused, ORIGIN, 2e9) == (
        DEAD_LETTERS,
        "schema id 9 is not known to the schema registry (HTTP 404)",
    )
    truncated = wire(1, V1, payment(4))[:12]
    counter, reason = checks.event(truncated, ORIGIN, 2e9)
    assert counter == DEAD_LETTERS and reason.startswith("not Avro of schema id 1: ")


def test_an_id_whose_schema_was_not_loaded_raises_instead_of_dead_lettering_a_good_message():
    with pytest.raises(UnknownSchema) as raised:
        intake().event(wire(5, V1, payment(5)), ORIGIN, 2e9)
    assert raised.value.schema_id == 5


def test_tombstones_and_deletes_are_counted_only():
    checks = intake(skip_when_null="card")
    assert checks.event(None, ORIGIN, 2e9) == (TOMBSTONES, None)
    step = Step(checks)
    windows = MemoryWindows(None)
    refused = step.take(None, ORIGIN, 2e9, windows)
    assert type(refused) is Refused and (refused.counter, refused.reason) == (TOMBSTONES, None)
    # a Debezium-style envelope: payload.after null is a delete
    envelope = {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {
                "name": "payload",
                "type": {
                    "type": "record",
                    "name": "Payload",
                    "fields": [
                        {"name": "after", "type": ["null", V1], "default": None},
                        {"name": "op", "type": "string"},
                    ],
                },
            }
        ],
    }
    mapping = EventMapping.from_config(
        {
            "format": "avro",
            "id": "payload.after.id",
            "key": "payload.after.card",
            "time": "payload.after.at",
            "features": ["payload.after.amount", "payload.after.kind"],
            "skip_when_null": "payload.after",
        },
        "db.payments",
        "[events]",
    )
    decoder = AvroDecoder()
    decoder.add(4, json.dumps(envelope))
    debezium = Intake(mapping, None, 3600.0, _any, decoder)
    created = wire(4, envelope, {"payload": {"after": payment(6), "op": "c"}})
    deleted = wire(4, envelope, {"payload": {"after": None, "op": "d"}})
    assert debezium.event(created, ORIGIN, 2e9) == {
        "id": "p6",
        "key": "c1",
        "ts": 1_772_352_902.129,
        "x": {"payload.after.amount": 15.0, "payload.after.kind": "IBAN"},
    }
    assert debezium.event(deleted, ORIGIN, 2e9) == (DELETES, None)
    assert debezium.event(None, ORIGIN, 2e9) == (TOMBSTONES, None)
    # the re-key stage keys a delete by its Kafka key, an event by its mapped key
    assert mapping.routing_key(created, ORIGIN, decoder) == b"c1"
    assert mapping.routing_key(deleted, ORIGIN, decoder) == b"kafka-key"


def test_skip_when_null_must_be_a_path():
    with pytest.raises(MappingError, match=r"\[events\].skip_when_null must be a dotted path"):
        EventMapping.from_config({"skip_when_null": ""}, "t", "[events]")


def test_a_json_deployment_reads_json_as_before():
    mapping = EventMapping.from_config({"id": "id", "time": "at"}, "t", "[events]")
    checks = Intake(mapping, None, 3600.0, _any)
    assert checks.decoder is None
    assert checks.event(b'{"id": 1, "at": 5, "a": 2}', ORIGIN, 10.0) == {
        "id": "1",
        "key": "kafka-key",
        "ts": 5,
        "x": {"a": 2},
    }
