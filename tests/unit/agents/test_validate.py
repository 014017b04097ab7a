"""validate_labels without a broker (faust's test_context)."""

import time

import orjson

from app import parts

validate_labels = parts.validate_labels


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
    async with validate_labels.test_context() as agent:
        await agent.put(b'{"id": "e2", "ts": 1, "y": 2}')
        await agent.put(b'{"id": "e3", "ts": 1, "y": 1}')
    reason = dict(sent["labels_dlq"].await_args.kwargs["headers"])["reason"]
    assert reason.startswith(b"y must be true/false (or 1/0) for the binary classifier")
    assert b"got 2;" in reason and sent["labels_dlq"].await_count == 1
    assert sent["join"].await_args.kwargs["value"]["id"] == "e3"


async def test_a_label_stamped_beyond_max_future_is_dead_lettered(app, sent):
    async with validate_labels.test_context() as agent:
        await agent.put(orjson.dumps({"id": "e4", "y": True, "ts": time.time() + 7200}))
        await agent.put(orjson.dumps({"id": "e5", "y": True, "ts": time.time() + 60}))
    reason = dict(sent["labels_dlq"].await_args.kwargs["headers"])["reason"]
    assert b"more than STREAMLEARN_MAX_FUTURE, 3600 s" in reason
    assert sent["labels_dlq"].await_count == 1
    assert sent["join"].await_args.kwargs["value"]["id"] == "e5"
