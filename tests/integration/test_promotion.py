"""A planted drift on real workers: the challenger is promoted on each shard at exactly the label
River alone computes, the predictions topic switches model right after it, and two kill -9 in
the stream change none of it."""

import random

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.integration.harness import consume_all, run, wait_for
from tests.integration.test_faults import kill_after_a_checkpoint, learned, routing_key
from tests.unit.test_promotion import DRIFT, RULE, reference, stream

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = f"""
[[model]]
name = "prior"
spec = "PriorClassifier"
role = "champion"
[[model]]
name = "lr"
spec = "StandardScaler | LogisticRegression"
role = "challenger"

[promotion]
metric = "{RULE.metric}"
window = {RULE.window}
margin = {RULE.margin}
min_scored = {RULE.min_scored}
"""
N = 4000


def by_shard(events: list[dict], partitions: int) -> dict[int, list[dict]]:
    """The events each shard takes, in order (Kafka's partitioner on the events' keys)."""
    partitioner = DefaultPartitioner()
    shards = {p: [] for p in range(partitions)}
    for event in events:
        ids = list(range(partitions))
        shards[partitioner(routing_key(event), ids, ids)].append(event)
    return shards


@pytest.mark.parametrize(
    ("partitions", "kills", "guarantee"),
    [(1, 2, "at_least_once"), (3, 0, "at_least_once"), (1, 2, "exactly_once")],
)
def test_a_planted_drift_promotes_the_challenger_at_the_label_river_computes(
    pipeline_factory, tmp_path, partitions, kills, guarantee
):
    config = tmp_path / "streamlearn.toml"
    config.write_text(CONFIG)
    pipeline = pipeline_factory(
        partitions=partitions,
        config=str(config),
        checkpoint_every=300,
        processing_guarantee=guarantee,
    )
    worker = pipeline.start_worker()
    events = stream(N)
    shards = by_shard(events, partitions)
    expected = {shard: reference(mine, RULE) for shard, mine in shards.items()}
    assert all(e is not None and e > DRIFT // partitions for e in expected.values()), expected
    sender = pipeline.send_paced(
        pipeline.events, [orjson.dumps(e) for e in events], [routing_key(e) for e in events], 1500
    )
    rng = random.Random(5)
    for kill in range(kills):
        threshold = rng.randint(kill * N // 3 + 300, (kill + 1) * N // 3)
        wait_for(
            lambda t=threshold: (e := learned([worker]).get(0)) and e["n_learned"] >= t,
            what=f"{threshold} learned before kill {kill + 1}",
        )
        kill_after_a_checkpoint(worker)
    sender.join()
    wait_for(
        lambda: sum(e["n_learned"] for e in worker.models()) == 2 * N,
        timeout=180,
        what="every event learned by both models",
    )

    # the predictions topic: each event's prediction names the champion of its shard at it
    # (at least once: after a kill, the replay writes some predictions again, and each copy
    # names the same model; exactly once: one message per event, read committed)
    exactly = guarantee == "exactly_once"
    level = "read_committed" if exactly else "read_uncommitted"

    def predictions() -> list:
        return run(consume_all(pipeline.bootstrap, pipeline.predictions, level))

    if exactly:  # (the last events' transaction commits with the shard's next checkpoint)
        wait_for(lambda: len(predictions()) >= N, what=f"{N} committed predictions")
    models_of: dict[str, list] = {}
    for record in predictions():
        value = orjson.loads(record.value)
        models_of.setdefault(value["id"], []).append(value["model"])
    assert len(models_of) == N and all(len(set(m)) == 1 for m in models_of.values())
    if exactly:
        assert all(len(m) == 1 for m in models_of.values()), "an event with two predictions"
    models_of = {i: set(m) for i, m in models_of.items()}
    for shard, mine in shards.items():
        served = [next(iter(models_of[e["id"]])) for e in mine]
        switch = expected[shard] + 1  # promoted after the label of event `expected`
        assert served == ["prior"] * switch + ["lr"] * (len(mine) - switch), f"shard {shard}"

    # the audit trail: one promotion per shard, at that label (a replay may repeat a record)
    records = [
        orjson.loads(r.value)
        for r in run(consume_all(pipeline.bootstrap, f"{pipeline.id}-model-events", level))
    ]
    if exactly:  # (each record once: in the transaction of the checkpoint that covers it)
        promoted = [r for r in records if r["type"] == "promotion"]
        assert len(promoted) == partitions, promoted
    promotions = {
        (r["shard"], r["event_id"], r["before"], r["after"])
        for r in records
        if r["type"] == "promotion"
    }
    assert promotions == {
        (shard, shards[shard][i]["id"], "prior", "lr") for shard, i in expected.items()
    }
    metrics = worker.get("/models/")
    assert {(e["shard"], e["name"]) for e in metrics if e["role"] == "champion"} == {
        (shard, "lr") for shard in shards
    }
