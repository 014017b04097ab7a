"""The learner's per-label path without a broker: a label a model raises on."""

from types import SimpleNamespace

import orjson

from agents import learner
from app import parts
from tests.unit.fakes import RecordingOutbox

engine, counters = parts.engine, parts.counters
pipeline_counts, recent_rejects = counters.counts, counters.recent_rejects


class Raising:
    offset = 4

    def step(self, value, offset):
        raise ValueError("cannot learn this")


async def test_a_label_a_model_raises_on_goes_to_the_labels_dead_letter_topic(app, monkeypatch):
    outbox = RecordingOutbox()
    monkeypatch.setattr(engine, "outbox", outbox)
    monkeypatch.setattr(engine, "partitions", {"labels-dlq": 1, "events-dlq": 1})
    live = SimpleNamespace(shard=0, models=Raising())
    before = pipeline_counts["model_errors:0"]
    value = {"kind": "label", "id": "e7", "y": True, "x": {"a": 1.0}, "y_pred": {}}
    learner.learn_label(live, value, 5, engine, counters)
    assert live.models.offset == 5  # taken: the shard goes on after it
    assert outbox.to("events-dlq") == []
    ((topic, partition, key, dead, headers),) = outbox.messages
    assert (topic, partition, key, orjson.loads(dead)) == ("labels-dlq", 0, b"e7", value)
    headers = dict(headers)
    reason = "model failed on label 'e7': ValueError: cannot learn this"
    assert headers["reason"] == reason.encode()
    assert headers["source_topic"].endswith(b"-scoring") and headers["source_offset"] == b"5"
    assert pipeline_counts["model_errors:0"] == before + 1
    assert recent_rejects["model_errors:0"][-1]["reason"] == reason
