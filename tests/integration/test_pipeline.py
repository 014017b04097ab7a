"""The pipeline end to end on a real broker: features, delayed labels, dead letters, restarts."""

import contextlib
import signal
import subprocess
import sys

import orjson
import pytest
from river import datasets

from app.models.spec import parse_spec
from tests.integration.harness import ROOT, create_topic, ensure_topics, run, wait_for
from tests.integration.test_exactness import reference
from tests.model_state import canonical, first_difference

pytestmark = pytest.mark.integration

LR = "StandardScaler | LogisticRegression"
LR_NAME = parse_spec(LR).name


def event(i, x, y=None, key=None, ts=None):
    value = {"id": f"e{i}", "key": key, "ts": float(i) if ts is None else ts, "x": x}
    if y is not None:
        value["y"] = y
    return orjson.dumps(value)


def phishing_events(start, stop):
    rows = list(datasets.Phishing())[start:stop]
    return [event(start + i, x, y) for i, (x, y) in enumerate(rows)]


def total(worker, field):
    return sum(e[field] for e in worker.models() if e["name"] == LR_NAME)


def test_windowed_aggregates_match_hand_computed_values(pipeline_factory):
    pipeline = pipeline_factory(
        partitions=1,
        model=LR,
        window=10,
        hop_window=10,
        hop_step=5,
        window_expires=1000,
    )
    pipeline.settings["ENRICHED_TOPIC"] = enriched = f"{pipeline.id}-enriched"
    worker = pipeline.start_worker()
    sent = [
        ("a1", "a", 100.0, {"amount": 1.0, "merchant": "fuel"}),
        ("b1", "b", 101.0, {"amount": 16.0}),
        ("a2", "a", 103.0, {"amount": 2.0}),
        ("a3", "a", 108.0, {"amount": 4.0}),
        ("a4", "a", 112.0, {"amount": 8.0}),
        ("n1", None, 113.0, {"amount": 5.0}),
    ]
    pipeline.send(
        pipeline.events,
        [orjson.dumps({"id": i, "key": k, "ts": ts, "x": x, "y": True}) for i, k, ts, x in sent],
        [(k or i).encode() for i, k, _, _ in sent],
    )
    scored = {v["id"]: v["x"] for v in (orjson.loads(r.value) for r in pipeline.read(enriched, 6))}

    def agg(n, total, n_hop, total_hop):
        return {
            "count_tumbling_10s": n,
            "amount_sum_tumbling_10s": total,
            "amount_mean_tumbling_10s": total / n,
            "count_hopping_10s": n_hop,
            "amount_sum_hopping_10s": total_hop,
            "amount_mean_hopping_10s": total_hop / n_hop,
        }

    assert scored["a1"] == {"amount": 1.0, "merchant=fuel": 1, **agg(1, 1.0, 1, 1.0)}
    assert scored["b1"] == {"amount": 16.0, **agg(1, 16.0, 1, 16.0)}
    # hopping windows of 10 s every 5 s: the last 10 s up to the end of the event's 5 s step
    assert scored["a2"] == {"amount": 2.0, **agg(2, 3.0, 2, 3.0), "secs_since_last": 3.0}
    assert scored["a3"] == {"amount": 4.0, **agg(3, 7.0, 3, 7.0), "secs_since_last": 5.0}
    assert scored["a4"] == {"amount": 8.0, **agg(1, 8.0, 2, 12.0), "secs_since_last": 4.0}
    assert scored["n1"] == {"amount": 5.0}  # no key: no aggregates
    wait_for(lambda: total(worker, "n_learned") == 6, what="6 events learned")


def test_delayed_labels_join_once_and_orphans_are_counted(pipeline_factory):
    pipeline = pipeline_factory(partitions=2, model=LR, label_ttl=50)
    worker = pipeline.start_worker()
    rows = list(datasets.Phishing())[:20]
    pipeline.send(
        pipeline.events,
        [event(i, x, ts=1000.0) for i, (x, _) in enumerate(rows)],
        [f"e{i}".encode() for i in range(20)],
    )
    wait_for(lambda: total(worker, "n_predicted") == 20, what="20 predictions")
    assert total(worker, "n_learned") == 0

    labels = [orjson.dumps({"id": f"e{i}", "y": y, "ts": 1010.0}) for i, (_, y) in enumerate(rows)]
    labels.append(orjson.dumps({"id": "ghost", "y": True, "ts": 1005.0}))  # no such event
    labels.append(orjson.dumps({"id": "e0", "y": rows[0][1], "ts": 1011.0}))  # duplicate
    labels.append(b'{"id": "e1", "y": [1], "ts": 1}')  # malformed
    pipeline.send(pipeline.labels, labels)
    wait_for(lambda: total(worker, "n_learned") == 20, what="20 labels learned")
    assert total(worker, "n_scored") == 20

    # event time moves on past the TTL on every partition: waiting labels expire and are counted
    pipeline.send(
        pipeline.labels,
        [orjson.dumps({"id": f"tick{i}", "y": True, "ts": 2000.0}) for i in range(8)],
    )
    counters = wait_for(
        lambda: (c := worker.stats()["counters"]).get("orphan_labels") == 1 and c,
        what="1 orphan label (the ghost)",
    )
    assert counters["duplicate_labels"] == 1  # the second label for e0, learned already
    assert counters["dead_labels"] == 1
    assert counters.get("expired_events", 0) == 0
    assert total(worker, "n_learned") == 20
    predictions = pipeline.read(pipeline.predictions, 20)
    assert sorted(orjson.loads(p.value)["id"] for p in predictions) == sorted(
        f"e{i}" for i in range(20)
    )
    (dead,) = pipeline.read(pipeline.labels + "-dlq", 1)
    assert dead.value == labels[-1]


BAD_EVENTS = [
    b"not json",
    b"",
    b"[1, 2, 3]",
    b'"a string"',
    b'{"ts": 1, "x": {}}',
    b'{"id": "m1", "x": {}}',
    b'{"id": "m2", "ts": 1}',
    b'{"id": 5, "ts": 1, "x": {}}',
    b'{"id": "m3", "ts": "yesterday", "x": {}}',
    b'{"id": "m4", "ts": 1, "x": [1, 2]}',
    b'{"id": "m5", "ts": 1, "x": {"a": {"nested": 1}}}',
    b'{"id": "m6", "ts": 1, "x": {"a": null}}',
    b'{"id": "m7", "ts": 1, "x": {"a": 1e999}}',
    b'{"id": "m8", "ts": 1, "x": {"a": NaN}}',
    b'{"id": "m9", "ts": 1, "x": {"a": 1}, "y": {"class": 1}}',
    b'{"id": "", "ts": 1, "x": {}}',
    b"\xff\xfe\x00 binary",
    b'{"id": "m10", "ts": 1, "x": {"a": 1}',
    b'{"id": "m11", "ts": 1767225600000, "x": {"a": 1}}',
    b'{"id": "m12", "ts": 1, "x": {"a": 18446744073709551615}}',
    # labels a binary classifier cannot learn: dead-lettered before the scaler sees "a"
    b'{"id": "m13", "ts": 1, "x": {"a": 1}, "y": "yes"}',
    b'{"id": "m14", "ts": 1, "x": {"a": 1}, "y": 3}',
    b'{"id": "m15", "ts": 1, "x": {"a": 1}, "y": 0.5}',
]


def test_malformed_events_go_to_the_dead_letter_topic(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR)
    worker = pipeline.start_worker()
    good = phishing_events(0, 60)
    mixed = []
    for i, payload in enumerate(good):
        mixed.append(payload)
        if i < len(BAD_EVENTS):
            mixed.append(BAD_EVENTS[i])
    pipeline.send(pipeline.events, mixed)
    dead = pipeline.read(pipeline.events + "-dlq", len(BAD_EVENTS))
    assert [r.value for r in dead] == BAD_EVENTS
    for record in dead:
        headers = dict(record.headers)
        assert headers["reason"], record
        assert headers["source_topic"] == pipeline.events.encode()

    model, metric, n = reference(parse_spec(LR), datasets.Phishing(), limit=60)
    entry = wait_for(
        lambda: (e := worker.model(LR_NAME)) and e["n_learned"] == 60 and e, what="60 learned"
    )
    assert entry["metrics"] == {type(m).__name__: m.get() for m in metric}
    assert worker.alive
    assert worker.stats()["counters"]["dead_letters"] == len(BAD_EVENTS)
    checkpoint = wait_for(
        lambda: (c := pipeline.last_checkpoint(0))
        and c["models"][LR_NAME]["n_learned"] == 60
        and c,
        what="checkpoint",
    )
    assert (
        first_difference(canonical(checkpoint["models"][LR_NAME]["model"]), canonical(model))
        is None
    )


def test_restarted_worker_keeps_its_model(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR)
    worker = pipeline.start_worker()
    pipeline.send(pipeline.events, phishing_events(0, 300))
    wait_for(lambda: total(worker, "n_learned") == 300, what="300 learned")
    assert worker.stop(signal.SIGTERM) == 0

    worker.start()
    wait_for(lambda: total(worker, "n_learned") == 300, what="the model back after restart")
    pipeline.send(pipeline.events, phishing_events(300, 600))
    entry = wait_for(
        lambda: (e := worker.model(LR_NAME)) and e["n_learned"] == 600 and e, what="600 learned"
    )
    assert worker.stats()["checkpoints_restored"] == 1
    model, metric, _ = reference(parse_spec(LR), datasets.Phishing(), limit=600)
    assert entry["metrics"] == {type(m).__name__: m.get() for m in metric}
    assert entry["n_predicted"] == 600


def test_checkpoint_signed_with_another_secret_stops_the_worker_loudly(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR)
    worker = pipeline.start_worker()
    pipeline.send(pipeline.events, phishing_events(0, 50))
    wait_for(lambda: total(worker, "n_learned") == 50, what="50 learned")
    assert worker.stop(signal.SIGTERM) == 0

    pipeline.settings["CHECKPOINT_SECRET"] = "another-secret"
    worker.process = subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info"],
        cwd=ROOT,
        env={
            **pipeline.env(),
            "STREAMLEARN_WEB_PORT": str(worker.port),
            "STREAMLEARN_DATADIR": str(worker.datadir),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = worker.process.communicate(timeout=120)
    assert worker.process.returncode != 0
    assert "signature does not match STREAMLEARN_CHECKPOINT_SECRET" in output
    assert "Refusing to replace a trained model with a fresh one" in output


def test_events_topic_with_other_partitions_stops_the_worker_with_the_fix(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR)
    run(ensure_topics(pipeline.settings["BROKER"], [pipeline.events], 3, 1))
    with contextlib.suppress(RuntimeError, TimeoutError):  # it may die before serving /stats/
        pipeline.start_worker()
    worker = pipeline.workers[0]
    wait_for(lambda: not worker.alive, what="the worker to stop")
    assert "has 3 partitions but STREAMLEARN_PARTITIONS=1" in worker.log()
    assert "STREAMLEARN_REKEY=1" in worker.log()


def test_rekey_learns_unkeyed_events_of_any_partition_count_once_each(pipeline_factory):
    # 3 partitions written round-robin without Kafka keys, read into 2 shards by event key
    pipeline = pipeline_factory(partitions=2, model=LR, rekey=1)
    run(ensure_topics(pipeline.settings["BROKER"], [pipeline.events], 3, 1))
    worker = pipeline.start_worker()
    rows = phishing_events(0, 300)
    rows.append(b"not an event")
    pipeline.send(pipeline.events, rows, [None] * len(rows), [i % 3 for i in range(len(rows))])
    wait_for(lambda: total(worker, "n_learned") == 300, what="300 learned")
    assert sorted(
        orjson.loads(r.value)["id"] for r in pipeline.read(pipeline.predictions, 300)
    ) == (sorted(f"e{i}" for i in range(300)))
    wait_for(lambda: sum(c["models"][LR_NAME]["n_learned"] for c in checkpoints(pipeline)) == 300)
    (dead,) = pipeline.read(f"{pipeline.events}-dlq", 1)
    headers = dict(dead.headers)
    assert dead.value == b"not an event"
    assert headers["source_topic"] == pipeline.events.encode()
    assert (headers["source_partition"], headers["source_offset"]) == (b"0", b"100")
    assert worker.stats()["engine"]["source"] == f"{pipeline.id}-rekeyed"
    assert total(worker, "n_learned") == 300


def checkpoints(pipeline) -> list:
    return [c for shard in (0, 1) if (c := pipeline.last_checkpoint(shard)) is not None]


def test_a_model_whose_checkpoint_exceeds_a_megabyte_is_saved_and_restored(pipeline_factory):
    # every event brings 1,000 new features: the scaler's state passes Kafka's 1 MB default
    pipeline = pipeline_factory(partitions=1, model=LR)
    worker = pipeline.start_worker()
    wide = [
        event(i, {f"f{i}_{j}": float(j % 7) for j in range(1000)}, y=i % 2 == 0) for i in range(40)
    ]
    pipeline.send(pipeline.events, wide)
    wait_for(lambda: total(worker, "n_learned") == 40, what="40 wide events learned")
    assert worker.stop(signal.SIGTERM) == 0
    checkpoint = pipeline.last_checkpoint(0)
    assert checkpoint["models"][LR_NAME]["n_learned"] == 40
    assert len(checkpoint["models"][LR_NAME]["model"]["StandardScaler"].counts) == 40_000
    worker.start()
    wait_for(lambda: worker.stats().get("checkpoints_restored") == 1, what="restored")
    assert total(worker, "n_learned") == 40


def test_predictions_kafka_refuses_stop_the_worker_before_a_checkpoint_covers_them(
    pipeline_factory,
):
    # the predictions topic takes record batches of at most 100 bytes: no batch of predictions
    # fits (MessageSizeTooLargeError, after the producer's retries), after which no checkpoint
    # may say those events were handled
    pipeline = pipeline_factory(partitions=1, model=LR)
    run(create_topic(pipeline.bootstrap, pipeline.predictions, {"max.message.bytes": "100"}))
    run(ensure_topics(pipeline.settings["BROKER"], [pipeline.events, pipeline.labels], 1, 1))
    pipeline.send(pipeline.events, phishing_events(0, 200))
    with contextlib.suppress(RuntimeError, TimeoutError):  # it may die before serving /stats/
        pipeline.start_worker()
    worker = pipeline.workers[0]
    assert worker.process.wait(timeout=120) != 0
    log = worker.log()
    assert "Kafka did not take output of the events shard 0 learned" in log
    assert "MessageSizeTooLargeError" in log
    checkpoint = pipeline.last_checkpoint(0)
    assert checkpoint is None or checkpoint["models"][LR_NAME]["n_learned"] == 0


def test_a_new_app_id_on_the_same_data_dir_starts_from_nothing(pipeline_factory):
    # STREAMLEARN_DATADIR is shared; each app id keeps its stores apart. (A RocksDB store keeps
    # one changelog offset per partition whatever the topic: another app's store would be read
    # as this app's, its checkpoint restored and its offsets skipped.)
    first = pipeline_factory(partitions=1, model=LR)
    worker = first.start_worker()
    first.send(first.events, phishing_events(0, 60))
    wait_for(lambda: total(worker, "n_learned") == 60, what="60 learned")
    assert worker.stop(signal.SIGTERM) == 0
    second = pipeline_factory(partitions=1, model=LR)
    other = second.start_worker(datadir=worker.datadir)
    second.send(second.events, phishing_events(0, 10))
    wait_for(lambda: total(other, "n_predicted") == 10, what="10 predicted")
    assert total(other, "n_learned") == 10
    assert (worker.datadir / first.id).is_dir() and (worker.datadir / second.id).is_dir()
