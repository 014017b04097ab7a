"""A team's own topics mapped onto events and labels (app/contracts/mapping.py): values and every
failure."""

import orjson
import pytest

from app.contracts.mapping import EventMapping, LabelMapping, MappingError, Origin
from app.contracts.records import Malformed

ORIGIN = Origin("orders", 2, 41, b"card-9", 1_767_225_600_500)

ORDER = {
    "order": {"ref": "o-17", "placed": "2026-01-01T01:00:00+01:00"},
    "card": {"id": "c-3", "country": "FR"},
    "amount": 12.5,
    "online": True,
    "tags": None,
    "fraud": 0,
}
FOREIGN = {
    "id": "order.ref",
    "key": "card.id",
    "time": "order.placed",
    "time_format": "iso8601",
    "label": "fraud",
}


def read(table: dict, value, origin: Origin = ORIGIN) -> dict:
    mapping = EventMapping.from_config(table, "orders", "[events]")
    return mapping.read(orjson.dumps(value), origin)


def test_a_foreign_shape_maps_to_an_event_nested_fields_named_by_their_path():
    assert read(FOREIGN, ORDER) == {
        "id": "o-17",
        "key": "c-3",
        "ts": 1_767_225_600.0,  # 01:00 at +01:00 is midnight UTC
        "x": {"card.country": "FR", "amount": 12.5, "online": True},  # null tags: absent
        "y": 0,
    }


def test_defaults_the_kafka_key_and_timestamp_and_an_id_from_the_origin():
    event = read({}, {"amount": 3.0, "merchant": "m1"})
    assert event == {
        "id": "orders-2-41",
        "key": "card-9",
        "ts": 1_767_225_600.5,
        "x": {"amount": 3.0, "merchant": "m1"},
    }
    no_key = Origin("orders", 0, 7, None, 1_000)
    assert read({}, {"a": 1}, no_key)["key"] is None


def test_features_and_exclude_choose_the_features():
    assert read({**FOREIGN, "features": ["amount", "card.country"]}, ORDER)["x"] == {
        "amount": 12.5,
        "card.country": "FR",
    }
    assert read({**FOREIGN, "exclude": ["card", "online"]}, ORDER)["x"] == {"amount": 12.5}


def test_epoch_ms_and_epoch_s_times_and_a_message_without_its_label_waits_for_one():
    table = {"id": "i", "time": "t", "time_format": "epoch_ms", "label": "y"}
    assert read(table, {"i": 5, "t": 1_767_225_600_250, "a": 1.0}) == {
        "id": "5",
        "key": "card-9",
        "ts": 1_767_225_600.25,
        "x": {"a": 1.0},
    }
    assert read({"time": "t"}, {"t": 1_767_225_600, "a": 1.0})["ts"] == 1_767_225_600


@pytest.mark.parametrize(
    ("table", "value", "reason"),
    [
        (
            FOREIGN,
            {**ORDER, "order": {"placed": "2026-01-01T00:00:00Z"}},
            "missing field 'order.ref'",
        ),
        (FOREIGN, {**ORDER, "card": {"country": "FR"}}, "missing field 'card.id'"),
        (
            FOREIGN,
            {**ORDER, "order": {"ref": "o", "placed": "yesterday"}},
            "time (order.placed) is not ISO-8601: 'yesterday'",
        ),
        (
            FOREIGN,
            {**ORDER, "order": {"ref": "o", "placed": "2026-01-01T00:00:00"}},
            "time (order.placed) has no zone",
        ),
        (
            {"time": "t", "time_format": "epoch_ms"},
            {"t": "soon"},
            "time (t) must be a number (epoch_ms)",
        ),
        ({"time": "t"}, {"t": 1_767_225_600_000}, "time (t): ts must be epoch seconds"),
        (FOREIGN, {**ORDER, "items": [1, 2]}, "feature 'items' is a list"),
        ({**FOREIGN, "features": ["amount", "basket"]}, ORDER, "missing field 'basket'"),
        (
            FOREIGN,
            {**ORDER, "amount": 1e300},
            "out of range",
        ),
        (FOREIGN, {**ORDER, "fraud": [1]}, "y must be a number, string or bool"),
    ],
)
def test_what_the_mapping_cannot_read_is_malformed_with_a_reason_naming_the_field(
    table, value, reason
):
    with pytest.raises(Malformed) as error:
        read(table, value)
    assert reason in str(error.value)


def test_labels_map_the_same_way_id_and_label_required():
    mapping = LabelMapping.from_config(
        {"id": "ref", "label": "outcome.chargeback", "time": "at", "time_format": "epoch_ms"},
        "chargebacks",
        "[labels]",
    )
    raw = orjson.dumps({"ref": "o-17", "outcome": {"chargeback": True}, "at": 1_767_225_601_000})
    assert mapping.read(raw, ORIGIN) == {"id": "o-17", "y": True, "ts": 1_767_225_601.0}
    with pytest.raises(Malformed, match="missing field 'outcome.chargeback'"):
        mapping.read(orjson.dumps({"ref": "o-1", "at": 1}), ORIGIN)
    with pytest.raises(MappingError, match=r"\[labels\].label is required"):
        LabelMapping.from_config({"id": "ref"}, "chargebacks", "[labels]")


def test_the_rekey_stage_routes_by_the_mapped_key_else_id_else_kafka_key():
    mapping = EventMapping.from_config(FOREIGN, "orders", "[events]")
    assert mapping.routing_key(orjson.dumps(ORDER), ORIGIN) == b"c-3"
    no_card = {**ORDER, "card": {"id": None}}
    assert mapping.routing_key(orjson.dumps(no_card), ORIGIN) == b"o-17"
    assert mapping.routing_key(b"garbage", ORIGIN) == b"card-9"


def test_a_feature_nested_deeper_than_python_recurses_is_refused_naming_it_not_raised():
    # orjson reads objects 1024 deep; walking them for features recursed past Python's limit
    # (RecursionError: the engine's step raised, and POST /predict/ answered 500)
    from app.contracts.intake import Intake
    from app.step import MemoryWindows, Refused, Step

    raw = b'{"order": {"ref": "o-1"}, "card": {"id": "c"}, "v": ' + b'{"a": ' * 1000
    raw += b"1" + b"}" * 1000 + b"}"
    mapping = EventMapping.from_config({"id": "order.ref", "key": "card.id"}, "orders", "[events]")
    with pytest.raises(Malformed) as error:
        mapping.read(raw, ORIGIN)
    assert str(error.value) == "feature 'v.a.a'... is nested deeper than 32 objects"
    step = Step(Intake(mapping, None, 3600.0, lambda y: None))
    refused = step.take(raw, ORIGIN, 1_767_225_600.0, MemoryWindows(None))
    assert type(refused) is Refused and refused.counter == "dead_letters"
    # as deep as allowed: the feature is named by its path
    raw = b'{"order": {"ref": "o-1"}, "card": {"id": "c"}, "v": ' + b'{"a": ' * 31
    raw += b"1" + b"}" * 31 + b"}"
    assert mapping.read(raw, ORIGIN)["x"] == {"v" + ".a" * 31: 1}
