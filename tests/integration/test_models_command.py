"""``faust -A app models list|export`` against a real worker's Kafka: the list names each
model's role and version; the exported version, read back with ``load_model``, equals River
trained offline on the labels that version had learned."""

import orjson
import pytest
from river import metrics

from app import load_model
from tests.integration.harness import SECRET, consume_all, run, wait_for
from tests.integration.test_dashboard import scrape
from tests.integration.test_faults import LR, hyperplane_events, learned
from tests.model_state import canonical, first_difference

pytestmark = pytest.mark.integration

N = 1200
EVERY = 500


def test_models_list_and_export_a_version_equal_to_river_offline(pipeline_factory, tmp_path):
    pipeline = pipeline_factory(partitions=1, model=LR.text, snapshot_every=EVERY)
    worker = pipeline.start_worker()
    rows = hyperplane_events(N)
    pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows])
    wait_for(lambda: (e := learned([worker]).get(0)) and e["n_learned"] == N, what="N learned")
    wait_for(
        lambda: (c := pipeline.last_checkpoint(0)) and c["models"][LR.name]["n_learned"] == N,
        what="a checkpoint covering every event (and the versions before it)",
    )

    listed = pipeline.command("models", "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = [x for x in listed.stdout.splitlines() if LR.name in x]
    assert line.split()[:5] == ["0", LR.name, "champion", "2", str(N)]

    out = tmp_path / "lr.model"
    exported = pipeline.command("models", "export", LR.name, "--version", "1", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert f"{LR.name} version 1 of shard 0 ({EVERY} labels learned" in exported.stdout
    model = load_model(out, secret=SECRET)
    offline = LR.build()
    for row in rows[:EVERY]:
        x = orjson.loads(orjson.dumps(row["x"]))
        offline.predict_one(x)
        offline.learn_one(x, row["y"])
    assert first_difference(canonical(model), canonical(offline)) is None
    accuracy = metrics.Accuracy()
    for row in rows[EVERY:]:  # and it predicts as River's would
        accuracy.update(row["y"], model.predict_one(row["x"]))
        assert model.predict_one(row["x"]) == offline.predict_one(row["x"])

    # a version that is not kept, and a model that does not exist: one line, exit status 2
    missing = pipeline.command("models", "export", LR.name, "--version", "9", "--out", str(out))
    assert (
        missing.returncode == 2
        and "has no such version; kept: shard 0 v1, shard 0 v2" in missing.stderr
    )
    unknown = pipeline.command("models", "export", "nope", "--out", str(out))
    assert unknown.returncode == 2 and "no version of model 'nope'" in unknown.stderr


def test_rollback_by_command_mid_stream_then_learns_on_as_river_would(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR.text, snapshot_every=EVERY)
    worker = pipeline.start_worker()
    rows = hyperplane_events(1500)
    pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows[:1000]])
    wait_for(
        lambda: (c := pipeline.last_checkpoint(0)) and c["models"][LR.name]["n_learned"] == 1000,
        what="versions 1 and 2 kept, with the checkpoint after them",
    )
    sent = pipeline.command("models", "rollback", LR.name, "--version", "1")
    assert sent.returncode == 0, sent.stderr
    assert "sent to 1 shard(s)" in sent.stdout

    def rollback():
        for record in run(consume_all(pipeline.bootstrap, f"{pipeline.id}-model-events")):
            value = orjson.loads(record.value)
            if value["type"] == "rollback":
                return value
        return None

    record = wait_for(rollback, what="the rollback on the model-events topic")
    assert record["versions"]["restored"] == 1 and record["events_offset"] == 999
    wait_for(lambda: learned([worker])[0]["n_learned"] == EVERY, what="version 1 restored")
    pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows[1000:]])
    wait_for(
        lambda: (c := pipeline.last_checkpoint(0))
        and c["models"][LR.name]["n_learned"] == EVERY + 500,
        what="the 500 events after the rollback learned and checkpointed",
    )
    # River offline: version 1 (the first 500 labels), then the events after the rollback
    offline = LR.build()
    for row in rows[:EVERY] + rows[1000:]:
        x = orjson.loads(orjson.dumps(row["x"]))
        offline.predict_one(x)
        offline.learn_one(x, row["y"])
    saved = pipeline.last_checkpoint(0)["models"][LR.name]["model"]
    assert first_difference(canonical(saved), canonical(offline)) is None
    metrics = scrape(worker)
    assert metrics[("streamlearn_rollbacks_total", (("shard", "0"),))] == 1
    assert metrics[("streamlearn_champion", (("model", LR.name), ("shard", "0")))] == 1
    # promoting the champion: refused by the shard, with the reason, and nothing changes
    sent = pipeline.command("models", "promote", LR.name)
    assert sent.returncode == 0, sent.stderr

    def refused():
        for record in run(consume_all(pipeline.bootstrap, f"{pipeline.id}-model-events")):
            value = orjson.loads(record.value)
            if value["type"] == "command_refused":
                return value
        return None

    assert "is the champion already" in wait_for(refused, what="the refusal")["reason"]
    # a second copy of the command is not applied again (the shard's checkpoint has its offset)
    worker.stop()
    worker.start()
    wait_for(lambda: learned([worker]).get(0), what="restarted")
    assert learned([worker])[0]["n_learned"] == EVERY + 500
    assert scrape(worker)[("streamlearn_rollbacks_total", (("shard", "0"),))] == 1
