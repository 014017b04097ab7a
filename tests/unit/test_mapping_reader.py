"""An ``[events]`` mapping compiled into one function (app/contracts/mapping_reader.py) reads every
message as the mapping's general code does: the same event, its features in the same order, or
the same refusal with the same reason; on random mappings and random messages, good and bad."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from app.contracts.avro import BYTES, FIXED, AvroDecoder
from app.contracts.mapping import Deleted, EventMapping, Origin
from app.contracts.records import Malformed
from tests.unit.test_avro_reader import _case, _write

FIELDS = ["id", "card", "at", "y", "amount", "kind", "n", "flag", "note"]
NESTED = ["payload.after.id", "payload.after.amount", "payload.ts_ms", "meta.card"]


def _value(rng: random.Random, depth: int = 0):
    """A field's value: mostly good scalars, sometimes anything a message may hold."""
    pick = rng.random()
    if pick < 0.55:
        return rng.choice(
            [
                rng.random() * 100,
                rng.randint(-5, 10**6),
                "c" + str(rng.randint(0, 9)),
                True,
                False,
                1_767_225_600_500,
                1_767_225_600.5,
            ]
        )
    if pick < 0.8:
        return rng.choice(
            [
                None,
                math.nan,
                math.inf,
                -1e16,
                10**400,
                "",
                "x" * 300,
                [1, 2],
                BYTES,
                FIXED,
                -3,
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00",
                0,
            ]
        )
    if depth < 2:
        return {name: _value(rng, depth + 1) for name in rng.sample(FIELDS, rng.randint(0, 4))}
    return None


def _message(rng: random.Random) -> dict:
    message = {name: _value(rng) for name in rng.sample(FIELDS, rng.randint(0, len(FIELDS)))}
    if rng.random() < 0.5:
        after = {"id": _value(rng), "amount": _value(rng)} if rng.random() < 0.8 else None
        message["payload"] = {"after": after, "ts_ms": rng.choice([1_767_225_600_500, None])}
    if rng.random() < 0.3:
        message["meta"] = {"card": _value(rng)}
    if rng.random() < 0.6:  # a well-formed core, so that most messages get to the features
        message.update(id="e1", at=1_767_225_600.5)
    return message


def _mapping(rng: random.Random) -> EventMapping:
    table: dict = {}
    paths = FIELDS + NESTED
    for name in ("id", "key", "time", "label"):
        if rng.random() < 0.7:
            table[name] = rng.choice(paths[:4] if rng.random() < 0.6 else paths)
    if "time" in table:
        table["time_format"] = rng.choice(["epoch_s", "epoch_ms", "iso8601"])
    choice = rng.random()
    if choice < 0.25:
        table["features"] = rng.sample(paths, rng.randint(1, 4))
    elif choice < 0.4:
        table["exclude"] = rng.sample(paths, rng.randint(1, 3))
    if rng.random() < 0.2:
        table["skip_when_null"] = "payload.after"
    return EventMapping.from_config(table, "orders", "[events]")


def _outcome(read, value, origin):
    try:
        return "event", repr(read(value, origin))
    except Malformed as exc:
        return "malformed", str(exc)
    except Deleted as exc:
        return "deleted", str(exc)


@pytest.mark.parametrize("seed", range(200))
def test_the_compiled_mapping_reads_every_message_as_the_general_code(seed):
    rng = random.Random(seed)
    mapping = _mapping(rng)
    for i in range(40):
        origin = Origin("orders", 1, i, rng.choice([None, b"card-9", b"\xff"]), 1_767_225_600_500)
        value = _message(rng)
        assert _outcome(mapping.read_value, value, origin) == _outcome(
            mapping.read_general, value, origin
        ), (mapping, value)


def test_a_record_of_scalars_and_one_of_nulls_and_objects_give_the_features_in_order():
    mapping = EventMapping.from_config({"id": "id", "key": "k", "time": "t"}, "o", "[events]")
    origin = Origin("o", 0, 0, None, 0)
    flat = {"a": 1.0, "id": "e", "b": "s", "k": None, "t": 5, "c": True}
    nested = {"a": 1.0, "id": "e", "z": None, "o": {"p": 2}, "b": "s", "k": "c", "t": 5}
    assert list(mapping.read_value(flat, origin)["x"]) == ["a", "b", "c"]
    assert list(mapping.read_value(nested, origin)["x"]) == ["a", "o.p", "b"]


# -- an Avro record's fields mapped without their dict (EventMapping.avro_reader) -------------


def _avro_mapping(rng: random.Random, schema: dict) -> EventMapping:
    """A random mapping over ``schema``'s fields: top-level names, a path into a nested record
    field, a name the record does not have."""
    paths = [f["name"] for f in schema["fields"]] + (["nope"] if rng.random() < 0.2 else [])
    for f in schema["fields"]:
        if isinstance(f["type"], dict) and f["type"].get("type") == "record":
            paths += [f"{f['name']}.{g['name']}" for g in f["type"]["fields"]]
    table: dict = {"format": "avro"}
    for name in ("id", "key", "time", "label"):
        if paths and rng.random() < 0.35:
            table[name] = rng.choice(paths)
    if "time" in table:
        table["time_format"] = rng.choice(["epoch_s", "epoch_ms", "iso8601"])
    choice = rng.random()
    if paths and choice < 0.25:
        table["features"] = rng.sample(paths, rng.randint(1, min(4, len(paths))))
    elif paths and choice < 0.4:
        table["exclude"] = rng.sample(paths, rng.randint(1, min(3, len(paths))))
    if paths and rng.random() < 0.15:
        table["skip_when_null"] = rng.choice(paths)
    return EventMapping.from_config(table, "orders", "[events]")


@pytest.mark.parametrize("seed", range(150))
def test_an_avro_record_mapped_at_once_reads_as_decoded_then_mapped(seed):
    rng, schema, parsed, named, make = _case(seed)
    decoder = AvroDecoder()
    decoder.add(1, orjson.dumps(schema).decode())
    for _ in range(4):
        mapping = _avro_mapping(rng, schema)
        at_once = mapping.avro_reader(1, schema)
        for i in range(10):
            origin = Origin("orders", 0, i, rng.choice([None, b"card-9"]), 1_767_225_600_500)
            raw = _write(parsed, named, make()[0])
            if rng.random() < 0.2:  # cut short, or bytes changed
                raw = bytearray(raw[: rng.randrange(5, len(raw) + 1)])
                if len(raw) > 5 and rng.random() < 0.5:
                    raw[rng.randrange(5, len(raw))] = rng.randrange(256)
                raw = bytes(raw)

            def general(raw, origin, mapping=mapping):
                return mapping.read_general(decoder.decode(raw), origin)

            assert _outcome(at_once, raw, origin) == _outcome(general, raw, origin), (
                schema,
                mapping,
            )
