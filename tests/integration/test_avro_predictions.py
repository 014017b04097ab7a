"""Predictions written as Avro (STREAMLEARN_PREDICTIONS_FORMAT=avro) through a real worker, a real
broker and a real schema registry, read by a team's consumer: confluent-kafka's
``AvroDeserializer`` with the registry.

Two workers learn the same stream, one writing JSON predictions, one Avro: every Avro prediction,
champion's and challenger's, one per event and model, equals the JSON worker's (id, key, model,
version, y_pred of its type, proba, ts), under the id registered for ``<topic>-value``, which
registering the same schema again gives again. A registry that refuses the schema stops the start
with one line and exit status 2.
"""

import json

import orjson
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from river import datasets

from app.commands.datasets import encode_x
from app.contracts.prediction_avro import schema_text
from tests.integration.harness import consume_all, run, wait_for

pytestmark = pytest.mark.integration

CHAMPION = "StandardScaler-LogisticRegression"
CHALLENGER = "GaussianNB"
MODELS = "StandardScaler | LogisticRegression; GaussianNB"
N = 400


def events(n: int) -> list[bytes]:
    """Phishing's first ``n`` rows in the events contract; every fifth without its label (its
    prediction is still written, its features parked)."""
    out = []
    for i, (x, y) in enumerate(datasets.Phishing()):
        if i == n:
            break
        event = {"id": f"v-{i}", "key": f"k{i % 7}", "ts": 1772352000.0 + i, "x": encode_x(x)}
        if i % 5:
            event["y"] = y
        out.append(orjson.dumps(event))
    return out


def learned(worker, name: str) -> int:
    entry = worker.model(name, 0)
    return entry["n_predicted"] if entry else -1


def typed(value):
    """``value`` with the type of every scalar beside it (True == 1 in Python; not here)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def by_id(predictions: list[dict]) -> dict[str, dict]:
    found = {p["id"]: p for p in predictions}
    assert len(found) == len(predictions), "one prediction per event"
    return found


def test_avro_predictions_are_the_json_worker_s_read_by_avro_deserializer_with_the_registry(
    pipeline_factory, registry
):
    settings = {"model": MODELS, "schema_registry_url": registry}
    as_json = pipeline_factory(**settings)
    as_avro = pipeline_factory(**settings, predictions_format="avro")
    workers = [as_json.start_worker(), as_avro.start_worker()]
    values = events(N)
    for pipeline in (as_json, as_avro):
        pipeline.send(pipeline.events, values)
    for worker in workers:
        for name in (CHAMPION, CHALLENGER):
            wait_for(lambda w=worker, m=name: learned(w, m) == N, what=f"{name} to predict {N}")

    client = SchemaRegistryClient({"url": registry})
    deserialize = AvroDeserializer(client)
    for suffix, model in (("predictions", CHAMPION), ("predictions-shadow", CHALLENGER)):
        topic_json, topic_avro = f"{as_json.id}-{suffix}", f"{as_avro.id}-{suffix}"
        wait_for(lambda t=topic_avro: len(run(consume_all(as_avro.bootstrap, t))) >= N)
        wait_for(lambda t=topic_json: len(run(consume_all(as_json.bootstrap, t))) >= N)
        records = run(consume_all(as_avro.bootstrap, topic_avro))
        written = run(consume_all(as_json.bootstrap, topic_json))
        assert len(records) == len(written) == N

        # the schema under <topic>-value: the id every message carries; the same schema
        # registered again is the same id
        subject = f"{topic_avro}-value"
        registered = client.get_latest_version(subject)
        assert json.loads(registered.schema.schema_str) == json.loads(schema_text())
        assert {r.value[:5] for r in records} == {b"\x00" + registered.schema_id.to_bytes(4, "big")}
        again = SchemaRegistryClient({"url": registry})  # (no cache: the registry answers)
        assert again.register_schema(subject, Schema(schema_text(), "AVRO")) == (
            registered.schema_id
        )

        context = SerializationContext(topic_avro, MessageField.VALUE)
        avro = by_id([deserialize(r.value, context) for r in records])
        plain = by_id([orjson.loads(r.value) for r in written])
        assert sorted(avro) == sorted(plain) == sorted(f"v-{i}" for i in range(N))
        assert [r.key for r in records] == [r.key for r in written]
        for i in range(N):
            a, j = avro[f"v-{i}"], plain[f"v-{i}"]
            assert type(a.pop("latency_ms")) is float and type(j.pop("latency_ms")) is float
            a["proba"] = [[d["label"], d["p"]] for d in a["proba"]]
            assert typed(a) == typed(j), f"{suffix} v-{i}"
            assert a["model"] == model
        # a bool label for each event, but GaussianNB's before it has learned anything (v-0 is
        # unlabelled, v-1 the first label): None, and no probabilities
        unknown = [i for i in range(N) if avro[f"v-{i}"]["y_pred"] is None]
        assert unknown == ([0, 1] if model == CHALLENGER else [])
        assert all(type(avro[f"v-{i}"]["y_pred"]) is bool for i in range(2, N))
        for i in range(2, N):  # (one label while a model has seen only one class)
            assert avro[f"v-{i}"]["proba"]
            assert all(type(k) is bool and type(p) is float for k, p in avro[f"v-{i}"]["proba"])
    assert workers[1].stats()["counters"].get("dead_letters", 0) == 0


def test_a_registry_that_refuses_the_prediction_schema_is_one_line_and_exit_2(
    pipeline_factory, registry
):
    pipeline = pipeline_factory(
        model=MODELS, schema_registry_url=registry, predictions_format="avro"
    )
    subject = f"{pipeline.predictions}-value"
    # a team's earlier schema under the subject, which the prediction record cannot read
    # (the registry's compatibility is BACKWARD)
    SchemaRegistryClient({"url": registry}).register_schema(subject, Schema('"string"', "AVRO"))
    done = pipeline.command("worker", timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(
        f"streamlearn: the schema registry at {registry} refuses the schema for subject "
        f"'{subject}': incompatible with its latest version ("
    ), done.stderr
    assert done.stderr.count("\n") == 1
