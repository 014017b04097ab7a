"""Avro as a real producer writes it, read back and decoded by streamlearn's client and decoder.

confluent-kafka's ``AvroSerializer`` registers the schemas in the local registry (the session's
``registry`` fixture: scripts/registry.sh) and writes Confluent's wire format to a topic of the
session's broker; aiokafka reads the messages back, ``RegistryClient.load`` fetches their writer
schemas by id and ``AvroDecoder.decode`` decodes them: a null union, an enum, a timestamp-millis,
a decimal and a bytes field, then a v2 of the schema with a field added with a default (schema
evolution mid-stream), an id the registry does not know and a message not in the wire format.
"""

import asyncio
import datetime as dt
import decimal
import json
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.contracts.avro import BYTES, AvroDecoder
from app.contracts.mapping import EventMapping, Origin
from app.contracts.records import Malformed
from app.kafka.registry import RegistryClient, RegistryError
from tests.integration.harness import consume

pytestmark = pytest.mark.integration

TS_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
V1 = {
    "type": "record",
    "name": "Payment",
    "namespace": "it.avro",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "card", "type": "string"},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["CARD", "IBAN"]}},
        {"name": "at", "type": TS_MILLIS},
        {
            "name": "price",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        },
        {"name": "blob", "type": "bytes"},
    ],
}
#: v2 adds a field with a default: compatible (BACKWARD), read with its own writer schema
V2 = {**V1, "fields": [*V1["fields"], {"name": "channel", "type": "string", "default": "web"}]}
#: a field added without a default: refused under BACKWARD
V3 = {**V1, "fields": [*V1["fields"], {"name": "risk", "type": "double"}]}
START_MS = 1_772_352_902_123


def at(i: int) -> dt.datetime:
    return dt.datetime.fromtimestamp((START_MS + i * 1001) / 1000, tz=dt.UTC)


def payment(i: int, **more) -> dict:
    return {
        "id": f"p-{i}",
        "card": f"c-{i % 2}",
        "amount": None if i == 1 else 10.5 + i,
        "kind": "IBAN" if i % 2 else "CARD",
        "at": at(i),
        "price": decimal.Decimal(f"{i}.25"),
        "blob": bytes([i]),
        **more,
    }


def decoded(i: int, **more) -> dict:
    """What streamlearn's decoder gives for ``payment(i)``: the JSON a team would have written."""
    return {
        "id": f"p-{i}",
        "card": f"c-{i % 2}",
        "amount": None if i == 1 else 10.5 + i,
        "kind": "IBAN" if i % 2 else "CARD",
        "at": (START_MS + i * 1001) / 1000.0,
        "price": float(f"{i}.25"),
        "blob": BYTES,
        **more,
    }


def produce_avro(bootstrap: str, registry: str, topic: str) -> None:
    """Three v1 payments, two v2 payments, a message with an id the registry does not know and
    one in JSON, in this order, to partition 0, as a Java or Python team's producer writes them."""
    client = SchemaRegistryClient({"url": registry})
    v1 = AvroSerializer(client, json.dumps(V1))
    v2 = AvroSerializer(client, json.dumps(V2))
    context = SerializationContext(topic, MessageField.VALUE)
    values = [v1(payment(i), context) for i in range(3)]
    values += [v2(payment(i, channel="app" if i == 3 else "web"), context) for i in (3, 4)]
    values += [b"\x00" + (987_654).to_bytes(4, "big") + b"\x00", b'{"id": "p-7"}']
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=f"k-{i}".encode(), partition=0)
    assert producer.flush(30) == 0, "messages not delivered within 30 s"


async def test_avro_from_a_real_producer_decodes_through_the_registry_across_a_schema_change(
    kafka, registry
):
    topic = f"it-avro-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(produce_avro, kafka, registry, topic)
    records = await consume(kafka, topic, 7, timeout=60.0)
    values = [r.value for r in sorted(records, key=lambda r: r.offset)]
    v1_id = int.from_bytes(values[0][1:5], "big")
    v2_id = int.from_bytes(values[3][1:5], "big")
    assert v1_id != v2_id and values[0][0] == 0

    decoder = AvroDecoder()
    async with RegistryClient(registry) as client:
        await client.check()
        await client.load(decoder, values)
        assert sorted(client.schemas) == sorted({v1_id, v2_id})  # each writer schema once
        assert client.requests == 1 + 3  # check, v1, v2, the unknown id
        await client.load(decoder, values)  # all known now: nothing asked
        assert client.requests == 4

        assert [decoder.decode(v) for v in values[:5]] == [
            decoded(0),
            decoded(1),  # amount: the null of ["null", "double"]
            decoded(2),
            decoded(3, channel="app"),  # v2, mid-stream: read with its own writer schema
            decoded(4, channel="web"),
        ]
        with pytest.raises(Malformed) as unknown:
            decoder.decode(values[5])
        assert str(unknown.value) == (
            f"schema id 987654 is not known to the schema registry at {registry} (HTTP 404, "
            "error code 40403)"
        )
        with pytest.raises(Malformed, match=r"first byte is 0x7b, .* \(it looks like JSON\)$"):
            decoder.decode(values[6])

        # the mapping's dotted paths on the decoded records: v1 has no channel, v2 has it
        mapping = EventMapping.from_config(
            {"format": "avro", "id": "id", "key": "card", "time": "at"}, topic, "[events]"
        )
        origin = Origin(topic, 0, 0, None, 0)
        events = [mapping.read_value(decoder.decode(v), origin) for v in (values[2], values[3])]
        assert events == [
            {
                "id": "p-2",
                "key": "c-0",
                "ts": (START_MS + 2002) / 1000.0,
                "x": {"amount": 12.5, "kind": "CARD", "price": 2.25},  # blob: skipped
            },
            {
                "id": "p-3",
                "key": "c-1",
                "ts": (START_MS + 3003) / 1000.0,
                "x": {"amount": 13.5, "kind": "IBAN", "price": 3.25, "channel": "app"},
            },
        ]

        # the registry compares a new version with the last: BACKWARD, as scripts/registry.sh
        # sets it (Apicurio's own default, NONE, would take this one)
        with pytest.raises(RegistryError, match="incompatible with its latest version"):
            await client.register(f"{topic}-value", json.dumps(V3))
        # predictions in Avro: a subject of their own, the schema read back by its id
        prediction = {
            "type": "record",
            "name": "Prediction",
            "fields": [{"name": "id", "type": "string"}, {"name": "y_pred", "type": "double"}],
        }
        text = json.dumps(prediction)
        schema_id = await client.register(f"{topic}-predictions-value", text)
        assert await client.register(f"{topic}-predictions-value", text) == schema_id
        assert json.loads((await client.schema(schema_id)).schema) == prediction
