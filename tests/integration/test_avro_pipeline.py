"""Avro events and labels through a real worker, a real broker and a real schema registry.

Messages are written as a team's producer writes them: confluent-kafka's ``AvroSerializer``
against the session's registry (scripts/registry.sh), Confluent's wire format on the topic. The
worker (``[events] format = "avro"``) must learn them exactly as River learns the decoded rows
offline, per shard; take a v2 of the schema (a field added with a default) mid-stream; join
delayed labels from an Avro labels topic; dead-letter what is not in the wire format or has an id
the registry does not know, and go on; pause, not dead-letter, while the registry does not answer;
and give the ``features`` command the same rows as its enriched topic.
"""

import json
import os
import signal
import socket
import time

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from river import datasets, evaluate

from app.commands.datasets import encode_x
from app.models.spec import parse_spec
from tests.integration.harness import ROOT, consume_all, run, wait_for
from tests.integration.reference import assert_worker_equals, with_delayed_labels
from tests.model_state import canonical, first_difference

pytestmark = pytest.mark.integration

LR = parse_spec("StandardScaler | LogisticRegression")
START_MS = 1_772_352_000_000  # 2026-03-01
FEATURES = [
    "empty_server_form_handler",
    "popup_window",
    "https",
    "request_from_other_domain",
    "anchor_from_other_domain",
    "is_popular",
    "long_url",
    "age_of_domain",
]
V1 = {
    "type": "record",
    "name": "Visit",
    "namespace": "it.phishing",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        *({"name": name, "type": "double"} for name in FEATURES),
        {"name": "y", "type": ["null", "boolean"], "default": None},
    ],
}
#: v2 adds a feature with a default (BACKWARD compatible): the model gets it from then on
V2 = {**V1, "fields": [*V1["fields"], {"name": "ip_in_url", "type": "double", "default": 0.0}]}
LABEL = {
    "type": "record",
    "name": "Verdict",
    "namespace": "it.phishing",
    "fields": [
        {"name": "visit", "type": "string"},
        {"name": "fraud", "type": "boolean"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
EVENTS = """
[events]
format = "avro"
id = "id"
time = "at"
label = "y"
"""
LABELS = """
[labels]
format = "avro"
id = "visit"
label = "fraud"
time = "at"
"""
UNKNOWN_ID = 987_654


def rows(n: int, v2_from: int) -> list[tuple[dict, bool]]:
    """Phishing's first ``n`` rows as the decoder gives them back: doubles; ``ip_in_url`` only
    from row ``v2_from`` on (written with v2)."""
    out = []
    for i, (x, y) in enumerate(datasets.Phishing()):
        if i == n:
            break
        x = {k: float(v) for k, v in encode_x(x).items()}
        if i < v2_from:
            del x["ip_in_url"]
        out.append((x, y))
    return out


def visit(i: int, x: dict, y: bool | None) -> dict:
    return {"id": f"v-{i}", "at": START_MS + i * 1000, **x, "y": y}


class Avro:
    """A team's Avro producer: one serializer per schema, the registry's ids."""

    def __init__(self, registry: str, topic: str) -> None:
        self.client = SchemaRegistryClient({"url": registry})
        self.context = SerializationContext(topic, MessageField.VALUE)
        self.v1 = AvroSerializer(self.client, json.dumps(V1))
        self.v2 = AvroSerializer(self.client, json.dumps(V2))

    def events(self, data: list[tuple[dict, bool]], v2_from: int, first: int = 0, labelled=True):
        values = []
        for i, (x, y) in enumerate(data, start=first):
            serializer = self.v2 if i >= v2_from else self.v1
            values.append(serializer(visit(i, x, y if labelled else None), self.context))
        return values


def send(bootstrap: str, topic: str, values: list, partitions: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for value, partition in zip(values, partitions, strict=True):
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(60) == 0, "messages not delivered within 60 s"


def schema_id(value: bytes) -> int:
    return int.from_bytes(value[1:5], "big")


def start(pipeline_factory, tmp_path, registry: str, config: str, **settings):
    path = tmp_path / "streamlearn.toml"
    path.write_text(config)
    pipeline = pipeline_factory(
        model=LR.text, config=str(path), schema_registry_url=registry, **settings
    )
    return pipeline, pipeline.start_worker()


def learned(worker, shard: int = 0) -> int:
    entry = worker.model(LR.name, shard)
    return entry["n_learned"] if entry else -1


@pytest.mark.parametrize("partitions", [1, 3])
def test_avro_events_are_learned_as_river_learns_the_decoded_rows_across_a_schema_change(
    pipeline_factory, tmp_path, registry, partitions
):
    pipeline, worker = start(pipeline_factory, tmp_path, registry, EVENTS, partitions=partitions)
    enriched = f"{pipeline.id}-enriched"
    pipeline.settings["ENRICHED_TOPIC"] = enriched
    worker.stop()
    worker = pipeline.start_worker()
    n, v2_from = 1250, 600
    data = rows(n, v2_from)
    avro = Avro(registry, pipeline.events)
    values = avro.events(data, v2_from)
    assert schema_id(values[0]) != schema_id(values[-1])  # two writer schemas, mid-stream
    where = [i % partitions for i in range(n)]
    # the bad cases, in partition 0 among the good ones: an id the registry does not know,
    # JSON, a message shorter than the header; a tombstone (counted, skipped)
    unknown = b"\x00" + UNKNOWN_ID.to_bytes(4, "big") + b"\x02"
    bad = [
        (
            unknown,
            f"schema id {UNKNOWN_ID} is not known to the schema registry at {registry} (HTTP "
            "404, error code 40403)",
        ),
        (
            b'{"id": "v-x"}',
            "not in Confluent's Avro wire format: the first byte is 0x7b, not the magic byte 0 "
            "(it looks like JSON)",
        ),
        (
            b"\x00\x00\x01",
            "not in Confluent's Avro wire format: 3 bytes, shorter than its 5-byte header (magic "
            "byte 0, 4-byte schema id)",
        ),
    ]
    half = 300
    sent = values[:half] + [v for v, _ in bad] + [None] + values[half:]
    send(pipeline.bootstrap, pipeline.events, sent, where[:half] + [0] * 4 + where[half:])

    for shard in range(partitions):
        own = [row for i, row in enumerate(data) if i % partitions == shard]
        model, metric = LR.build(), LR.new_metrics()
        evaluate.progressive_val_score(own, model, metric)
        k = len(own)
        wait_for(lambda s=shard, k=k: learned(worker, s) == k, what=f"shard {shard}")
        entry = worker.model(LR.name, shard)
        assert entry["n_predicted"] == len(own)
        assert entry["metrics"] == {type(m).__name__: m.get() for m in metric}
        checkpoint = wait_for(
            lambda s=shard, k=k: (c := pipeline.last_checkpoint(s))
            and c["models"][LR.name]["n_learned"] == k
            and c,
            what=f"the checkpoint of shard {shard}",
        )
        diff = first_difference(canonical(checkpoint["models"][LR.name]["model"]), canonical(model))
        assert diff is None, f"shard {shard} differs from River offline at {diff}"

    dead = pipeline.read(f"{pipeline.events}-dlq", len(bad))
    assert [(r.value, dict(r.headers)["reason"].decode()) for r in dead] == bad
    counters = wait_for(lambda: (c := worker.stats()["counters"]).get("tombstones") and c)
    assert counters["tombstones"] == 1 and counters["dead_letters"] == len(bad)

    # the features command reads the Avro topic with the same code: the enriched topic's rows
    stream = wait_for(
        lambda: len(r := run(consume_all(pipeline.bootstrap, enriched))) == n and r,
        what=f"{n} enriched events",
    )
    out = tmp_path / "features.jsonl"
    done = pipeline.command("features", f"kafka:{pipeline.events}", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    computed = {(o := orjson.loads(line))["id"]: o for line in out.read_bytes().splitlines()}
    assert len(computed) == n
    for record in stream:
        event = orjson.loads(record.value)
        row = computed[event["id"]]
        assert orjson.dumps(row["x"]) == orjson.dumps(event["x"]), event["id"]
        assert (row["ts"], row["y"], row["key"]) == (event["ts"], event["y"], event["key"])
    assert "dead_letters: 3" in done.stderr and "tombstones: 1" in done.stderr
    assert orjson.loads(stream[0].value)["ts"] == START_MS / 1000.0


def test_delayed_labels_from_an_avro_labels_topic(pipeline_factory, tmp_path, registry):
    pipeline, worker = start(pipeline_factory, tmp_path, registry, EVENTS + LABELS, partitions=1)
    data = rows(300, 150)
    avro = Avro(registry, pipeline.events)
    values = avro.events(data[:200], 150) + avro.events(data[200:], 150, 200, labelled=False)
    send(pipeline.bootstrap, pipeline.events, values, [0] * len(values))
    wait_for(lambda: (m := worker.model(LR.name)) and m["n_predicted"] == 300, what="300")

    labels = AvroSerializer(avro.client, json.dumps(LABEL))
    context = SerializationContext(pipeline.labels, MessageField.VALUE)
    at = START_MS + 400_000
    verdicts = [
        labels({"visit": f"v-{200 + i}", "fraud": y, "at": at + i}, context)
        for i, (_, y) in enumerate(data[200:])
    ]
    verdicts.insert(50, b'{"visit": "v-1", "fraud": true}')  # not Avro: a dead label
    verdicts.insert(60, None)  # a tombstone: skipped
    send(pipeline.bootstrap, pipeline.labels, verdicts, [0] * len(verdicts))
    wait_for(lambda: learned(worker) == 300, what="300 learned")

    model, metric = with_delayed_labels(LR, data[:200], data[200:])
    assert_worker_equals(pipeline, worker, LR, model, metric, 300)
    (dead,) = pipeline.read(f"{pipeline.labels}-dlq", 1)
    assert dead.value == b'{"visit": "v-1", "fraud": true}'
    assert dict(dead.headers)["reason"] == (
        b"not in Confluent's Avro wire format: the first byte is 0x7b, not the magic byte 0 "
        b"(it looks like JSON)"
    )
    counters = wait_for(lambda: (c := worker.stats()["counters"]).get("label_tombstones") and c)
    assert counters["label_tombstones"] == 1 and counters.get("dead_letters", 0) == 0


def assert_learned_once_as_river(pipeline, worker, data: list) -> None:
    """Every row of ``data`` learned exactly once, as River learns them offline, and none
    dead-lettered."""
    model, metric = LR.build(), LR.new_metrics()
    evaluate.progressive_val_score(data, model, metric)
    assert_worker_equals(pipeline, worker, LR, model, metric, len(data))
    assert worker.model(LR.name)["n_predicted"] == len(data)
    assert worker.stats()["counters"].get("dead_letters", 0) == 0


def registry_pid() -> int:
    run_dir = os.environ.get("REGISTRY_RUN", str(ROOT / ".cache" / "registry" / "run"))
    with open(os.path.join(run_dir, "pid")) as f:
        return int(f.read().strip())


def test_a_registry_that_stops_answering_pauses_reading_and_nothing_is_lost_or_learned_twice(
    pipeline_factory, tmp_path, registry
):
    """The registry frozen (SIGSTOP) for 20 s: its ids and schemas are kept, as a real
    registry's outage keeps them. (scripts/registry.sh down/up would not do: it is in memory, a
    restart forgets every id, and a worker asking between the restart and the schemas'
    registration again would rightly be told the id is unknown; test_avro_registry_outage.py
    really stops a registry of its own that keeps its data, REGISTRY_DATA.) Messages of a schema the
    worker holds are learned during the outage; the first message of a new schema id pauses
    reading until the registry answers again."""
    pipeline, worker = start(pipeline_factory, tmp_path, registry, EVENTS, partitions=1)
    data = rows(600, 400)
    avro = Avro(registry, pipeline.events)
    values = avro.events(data, 400)  # v2 registered now, before the outage; not yet read
    send(pipeline.bootstrap, pipeline.events, values[:300], [0] * 300)
    wait_for(lambda: learned(worker) == 300, what="300 learned before the outage")

    pid = registry_pid()
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        send(pipeline.bootstrap, pipeline.events, values[300:400], [0] * 100)  # v1: cached
        wait_for(lambda: learned(worker) == 400, what="v1 events learned during the outage")
        send(pipeline.bootstrap, pipeline.events, values[400:], [0] * 200)  # v2: a new id
        engine = wait_for(
            lambda: (e := worker.stats()["engine"])["registry_paused"] is not None and e,
            what="reading paused",
        )
        assert engine["registry_waits"] >= 1
        while time.monotonic() - frozen < 20:
            assert learned(worker) == 400  # paused: nothing of the read stepped
            assert worker.stats()["counters"].get("dead_letters", 0) == 0
            time.sleep(1)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: learned(worker) == 600, what="600 learned after the outage")

    assert_learned_once_as_river(pipeline, worker, data)
    assert worker.stats()["engine"]["registry_paused"] is None
    assert "reading paused, trying again in" in worker.log()


def test_a_registry_that_cannot_be_reached_at_start_up_is_one_line_and_exit_2(
    pipeline_factory, tmp_path
):
    """... for the worker, and for ``features`` reading Avro; the commands that read no Avro
    (``models`` in an outage: list, rollback) do not ask it."""
    path = tmp_path / "streamlearn.toml"
    path.write_text(EVENTS)
    with socket.socket() as bound:  # (held and not listening: a connection is refused)
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/apis/ccompat/v7"
        pipeline = pipeline_factory(model=LR.text, config=str(path), schema_registry_url=url)
        done = pipeline.command("worker", timeout=60)
        features = pipeline.command(
            "features", f"kafka:{pipeline.events}", "--out", str(tmp_path / "f.jsonl")
        )
        listed = pipeline.command("models", "list")
    unreachable = f"the schema registry at {url} cannot be reached: ClientConnectorError"
    assert done.returncode == 2
    assert done.stderr.startswith(f"streamlearn: {unreachable}")
    assert done.stderr.count("\n") == 1
    assert features.returncode == 1, features.stderr[-2000:]
    assert features.stderr.startswith(f"features: {unreachable}")
    assert features.stderr.count("\n") == 1 and not (tmp_path / "f.jsonl").exists()
    # (past the registry: to Kafka, where no worker of this app has written anything)
    checkpoints = f"{pipeline.id}-shard-checkpoints-changelog"
    assert listed.stderr == (
        f"models list: topic {checkpoints!r} does not exist on kafka://{pipeline.bootstrap}\n"
    )


def test_the_rekey_stage_keys_avro_events_by_their_mapped_key(pipeline_factory, tmp_path, registry):
    """STREAMLEARN_REKEY=1: events written to the raw partitions whatever their card, re-keyed by
    the card the mapping reads from the decoded record: every event learned, none misrouted."""
    config = EVENTS + 'key = "card"\n'
    schema = {**V1, "fields": [*V1["fields"], {"name": "card", "type": "string"}]}
    pipeline, worker = start(pipeline_factory, tmp_path, registry, config, partitions=2, rekey=1)
    data = rows(400, 400)
    serializer = AvroSerializer(SchemaRegistryClient({"url": registry}), json.dumps(schema))
    context = SerializationContext(pipeline.events, MessageField.VALUE)
    values = [
        serializer({**visit(i, x, y), "card": f"c-{i % 5}"}, context)
        for i, (x, y) in enumerate(data)
    ]
    send(pipeline.bootstrap, pipeline.events, values, [i % 2 for i in range(len(values))])
    wait_for(lambda: learned(worker, 0) + learned(worker, 1) == 400, what="400 learned")
    stats = worker.stats()
    assert stats["engine"]["misrouted"] == 0
    assert stats["counters"].get("dead_letters", 0) == 0
    assert learned(worker, 0) > 0 and learned(worker, 1) > 0
