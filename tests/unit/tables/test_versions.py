"""Versions of the models (app/models/shard.py take_version, tables/versions.py): taken every
STREAMLEARN_SNAPSHOT_EVERY labels and at promotions, their number rising by one; written by the
shard's checkpoint, signed, the last STREAMLEARN_SNAPSHOT_KEEP kept; read back bit-equal."""

import asyncio
import copy
import pickle

import pytest

from app.models.codec import CheckpointError
from app.models.shard import ShardModels
from app.models.spec import parse_specs
from app.settings import Settings
from tables.live_shard import LiveShard
from tables.versions import describe, load, stored_versions, version_key
from tests.model_state import canonical, first_difference
from tests.unit.fakes import HeldProducer, acknowledge, fake_shard_tables, fake_table, until
from tests.unit.test_promotion import run, stream

SPECS = parse_specs("StandardScaler | LogisticRegression; GaussianNB")
LR = "StandardScaler-LogisticRegression"


def test_a_version_every_n_labels_numbered_from_one_and_named_in_the_predictions():
    shard = ShardModels.fresh(0, SPECS, snapshot_every=100)
    snapshots = run(shard, stream(350), "snapshot")
    assert [(r["model"], r["version"], r["n_learned"]) for r in snapshots if r["model"] == LR] == [
        (LR, 1, 100),
        (LR, 2, 200),
        (LR, 3, 300),
    ]
    predictions, _ = shard.take_event({"id": "p", "key": None, "ts": 1.0, "x": {"a": 0.5}}, 0.0)
    assert {p["model"]: p["version"] for p in predictions} == {LR: 3, "GaussianNB": 3}
    pending = shard.take_pending_versions()
    assert [m["version"] for m, _ in pending if m["name"] == LR] == [1, 2, 3]


def test_a_version_holds_the_model_as_it_was_when_taken():
    shard = ShardModels.fresh(0, SPECS, snapshot_every=100)
    events = stream(150)
    run(shard, events[:100])
    at_100 = canonical(copy.deepcopy(shard.models[LR].model))
    run(shard, events[100:])  # it learns on after the version
    (meta, payload), _ = shard.take_pending_versions()
    assert meta["name"] == LR and meta["n_learned"] == 100
    assert first_difference(canonical(pickle.loads(payload)["model"]), at_100) is None
    assert first_difference(canonical(shard.models[LR].model), at_100) is not None


async def test_the_checkpoint_writes_the_versions_signed_keeping_the_last_ones():
    tables = fake_shard_tables(SPECS, versions_table=fake_table("model-versions"), keep=2)
    models = ShardModels.fresh(0, SPECS, snapshot_every=100)
    live = LiveShard(models, tables, 100, Settings().recipe)
    run(models, stream(350))
    live.took(349, 350)
    producer = HeldProducer()
    from app.kafka.outbox import Outbox

    live.checkpoints.outbox = Outbox(producer)
    task = asyncio.ensure_future(live.checkpoint())
    acked = 0
    while not task.done():  # Kafka takes every batch (versions, then the checkpoint)
        await until(lambda n=acked: len(producer.deliveries) > n or task.done())
        for delivery in producer.deliveries[acked:]:
            acked += 1
            acknowledge(delivery, acked)
    await task
    store = tables.versions.data
    # versions 1-3 of each model: the last 2 kept, version 3 in the slot of version 1
    assert sorted(store) == sorted(
        version_key(name, 0, v, 2) for name in (LR, "GaussianNB") for v in (2, 3)
    )
    kept = stored_versions(type("T", (), {"items": lambda self: store.items()})(), LR)
    assert [(m["version"], m["n_learned"]) for m in kept] == [(2, 200), (3, 300)]
    state = load(store[version_key(LR, 0, 3, 2)], "s")
    assert state["meta"] == describe(store[version_key(LR, 0, 3, 2)])
    assert state["model"].__class__.__name__ == "Pipeline"
    with pytest.raises(CheckpointError):
        load(store[version_key(LR, 0, 3, 2)], "another secret")


def test_commands_promote_and_roll_back_once_each_and_refuse_what_is_not_there():
    shard = ShardModels.fresh(0, SPECS, snapshot_every=100)
    run(shard, stream(250))
    shard.take_model_events()
    (v1_meta, v1_payload), *_ = [v for v in shard.take_pending_versions() if v[0]["name"] == LR]
    version_one = pickle.loads(v1_payload)
    record = shard.command({"action": "promote", "model": "GaussianNB", "id": "c1"}, 0)
    assert record["type"] == "promotion" and shard.champion == "GaussianNB"
    assert shard.origins["c0"] == 0
    record = shard.command({"action": "rollback", "model": LR, "id": "c2"}, 1, version_one)
    assert record["type"] == "rollback" and record["versions"]["restored"] == 1
    assert shard.n_rollbacks == 1 and record["n_learned"] == 100
    live = shard.models[LR]
    assert live.n_learned == 100 and live.version == 4  # (2 by count, 1 at the promotion, 1 now)
    assert first_difference(canonical(live.model), canonical(version_one["model"])) is None
    assert shard.champion == LR  # (it was the champion at version 1: it is again)
    refused = shard.command({"action": "promote", "model": "nope", "id": "c3"}, 2)
    assert refused["type"] == "command_refused" and "no model named 'nope'" in refused["reason"]
    refused = shard.command({"action": "rollback", "model": LR, "version": 9, "id": "c4"}, 3)
    assert refused["reason"] == f"version 9 of {LR} is not kept"
    assert shard.origins["c0"] == 3  # each offset once: a copy read again is skipped
    assert v1_meta["version"] == 1
