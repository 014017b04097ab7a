"""validate_events / validate_labels without a broker (faust's test_context)."""

import orjson

from agents.validate import validate_events, validate_labels
from tables.counters import pipeline_counts


async def test_valid_event_goes_to_clean_keyed_by_entity(app, sent):
    async with validate_events.test_context() as agent:
        raw = orjson.dumps({"id": "e1", "key": "card-1", "ts": 5.0, "x": {"a": 1}, "y": 0})
        await agent.put(raw)
    sent["clean"].assert_awaited_once()
    kwargs = sent["clean"].await_args.kwargs
    assert kwargs["key"] == "card-1"
    assert kwargs["value"]["src"] == ["e", 0, 0]
    assert {k: v for k, v in kwargs["value"].items() if k not in ("t_in", "src")} == {
        "id": "e1",
        "key": "card-1",
        "ts": 5.0,
        "x": {"a": 1},
        "y": 0,
    }
    sent["events_dlq"].assert_not_awaited()


async def test_malformed_event_is_dead_lettered_with_its_bytes_and_counted(app, sent):
    before = pipeline_counts["dead_letters:0"]
    async with validate_events.test_context() as agent:
        await agent.put(b'{"id": "e1", "ts": 1, "x": {"a": [1]}}')
        await agent.put(b"garbage")
    assert sent["events_dlq"].await_count == 2
    first = sent["events_dlq"].await_args_list[0].kwargs
    assert first["value"] == b'{"id": "e1", "ts": 1, "x": {"a": [1]}}'
    headers = dict(first["headers"])
    assert headers["reason"] == b"x['a'] must be a number, string or bool, got list"
    sent["clean"].assert_not_awaited()
    assert pipeline_counts["dead_letters:0"] == before + 2


async def test_labels_are_rekeyed_by_event_id(app, sent):
    async with validate_labels.test_context() as agent:
        await agent.put(orjson.dumps({"id": "e9", "y": True, "ts": 3}))
        await agent.put(b'{"id": "e9"}')
    kwargs = sent["join"].await_args.kwargs
    assert kwargs["key"] == "e9"
    assert kwargs["value"] == {"kind": "label", "id": "e9", "y": True, "ts": 3}
    assert sent["labels_dlq"].await_count == 1


async def test_labels_the_models_cannot_learn_are_dead_lettered_with_the_reason(app, sent):
    # the unit tests' model is a binary classifier: it learns true/false (or 1/0) only
    async with validate_events.test_context() as agent:
        await agent.put(b'{"id": "e1", "ts": 1, "x": {"a": 1.0}, "y": "yes"}')
    async with validate_labels.test_context() as agent:
        await agent.put(b'{"id": "e2", "ts": 1, "y": 2}')
        await agent.put(b'{"id": "e3", "ts": 1, "y": 1}')
    reason = dict(sent["events_dlq"].await_args.kwargs["headers"])["reason"]
    assert reason.startswith(b"y must be true/false (or 1/0) for the binary classifier")
    assert b"got 'yes'" in reason
    reason = dict(sent["labels_dlq"].await_args.kwargs["headers"])["reason"]
    assert b"got 2;" in reason and sent["labels_dlq"].await_count == 1
    sent["clean"].assert_not_awaited()
    assert sent["join"].await_args.kwargs["value"]["id"] == "e3"
