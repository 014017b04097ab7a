"""Kill real worker processes mid-stream: every model ends as if nothing had happened."""

import random
import signal

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from river import datasets, evaluate

from app.commands.datasets import encode_x
from app.models.spec import parse_spec
from app.settings import Settings
from tests.integration.harness import consume_all, ensure_topics, run, wait_for
from tests.model_state import canonical, first_difference

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LR = parse_spec("StandardScaler | LogisticRegression")
N = 6000
#: events/s of the streams the kill tests send: slower than a worker learns, so that every kill
#: lands while events are still arriving, with some learned but not yet checkpointed
RATE = 400


def hyperplane_events(n, seed=7):
    rows = []
    for i, (x, y) in enumerate(datasets.synth.Hyperplane(seed=seed, n_features=10)):
        if i == n:
            break
        rows.append({"id": f"h{i}", "key": None, "ts": float(i), "x": encode_x(x), "y": y})
    return rows


#: Small windows over a stream whose keys come and go, and a cache smaller than the keys of a
#: shard: windows expire, keys are evicted, deleted, and read back from the table.
WINDOWED = {
    "window": 50,
    "hop_window": 50,
    "hop_step": 10,
    "window_expires": 200,
    "window_features": "0,1",
    "key_cache": 8,
}


def keyed_events(n, seed=5):
    rows = hyperplane_events(n, seed)
    for i, row in enumerate(rows):
        row["key"] = f"k{i % 30 + 30 * (i // 2000)}"
    return rows


def recipe_of(windowed):
    """The features a worker started with the settings ``windowed`` gives
    (app/features/recipe.py)."""
    return Settings.from_env(
        {f"STREAMLEARN_{k.upper()}": str(v) for k, v in windowed.items()}
    ).recipe


def with_windows(rows):
    """``rows`` with the windowed features the worker adds under WINDOWED, per key, in order."""
    recipe = recipe_of(WINDOWED)
    states, out = {}, []
    for row in rows:
        x = dict(row["x"])
        states[row["key"]], _ = recipe.step(states.get(row["key"]), row["ts"], x)
        out.append({**row, "x": x})
    return out


def routing_key(row):
    return (row["key"] or row["id"]).encode()


def reference_by_shard(rows, partitions):
    """Per shard: River's progressive validation over the rows that shard owns, in order."""
    partitioner = DefaultPartitioner()
    by_shard = {p: [] for p in range(partitions)}
    for row in rows:
        shard = partitioner(routing_key(row), list(range(partitions)), list(range(partitions)))
        by_shard[shard].append((orjson.loads(orjson.dumps(row["x"])), row["y"]))
    out = {}
    for shard, data in by_shard.items():
        model, metric = LR.build(), LR.new_metrics()
        evaluate.progressive_val_score(data, model, metric)
        out[shard] = (len(data), model, metric)
    return out


def learned(workers):
    entries = {}
    for worker in workers:
        if worker.alive:
            for entry in worker.models():
                entries[entry["shard"]] = entry
    return entries


def kill_after_a_checkpoint(worker):
    """SIGKILL ``worker`` once it has written a checkpoint, restart it, and check that the new
    process starts from that checkpoint (not from scratch: that would hide what a replay does)."""
    wait_for(
        lambda: (s := worker.stats()).get("checkpoint_age_s") or s.get("checkpoints_restored"),
        what="a checkpoint before the kill",
    )
    worker.stop(signal.SIGKILL)
    worker.start()
    wait_for(lambda: worker.stats().get("checkpoints_restored"), what="the checkpoint restored")


def kill_three_times(worker, rng) -> None:
    """SIGKILL ``worker`` three times while N events stream in, at random points of each
    quarter of the stream, each after a checkpoint (see kill_after_a_checkpoint)."""
    for kill in range(3):
        threshold = rng.randint(kill * N // 4 + 200, (kill + 1) * N // 4)
        wait_for(
            lambda t=threshold: sum(e["n_learned"] for e in worker.models()) >= t,
            what=f"{threshold} learned before kill {kill + 1}",
        )
        kill_after_a_checkpoint(worker)


def assert_exact(pipeline, workers, rows, partitions, expected=None):
    expected = expected or reference_by_shard(rows, partitions)
    entries = wait_for(
        lambda: (e := learned(workers))
        and len(e) == partitions
        and all(e[s]["n_learned"] == expected[s][0] for s in expected)
        and e,
        timeout=180,
        what="every shard to learn its events once",
    )
    for shard, (n, model, metric) in expected.items():
        assert entries[shard]["n_learned"] == n
        assert entries[shard]["n_scored"] == n
        assert entries[shard]["metrics"] == {type(m).__name__: m.get() for m in metric}
        checkpoint = wait_for(
            lambda s=shard, n=n: (c := pipeline.last_checkpoint(s))
            and c["models"][LR.name]["n_learned"] == n
            and c,
            what=f"checkpoint of shard {shard}",
        )
        diff = first_difference(canonical(checkpoint["models"][LR.name]["model"]), canonical(model))
        assert diff is None, f"shard {shard} differs at {diff}"


def test_sigkill_three_times_learns_every_event_once(pipeline_factory):
    rng = random.Random(11)
    pipeline = pipeline_factory(partitions=1, model=LR.text, checkpoint_every=500)
    worker = pipeline.start_worker()
    rows = hyperplane_events(N)
    sender = pipeline.send_paced(
        pipeline.events, [orjson.dumps(r) for r in rows], [r["id"].encode() for r in rows], RATE
    )
    for kill in range(3):
        threshold = rng.randint(kill * N // 4 + 200, (kill + 1) * N // 4)
        wait_for(
            lambda t=threshold: (e := worker.model(LR.name)) and e["n_learned"] >= t,
            what=f"{threshold} learned before kill {kill + 1}",
        )
        kill_after_a_checkpoint(worker)
    sender.join()
    assert_exact(pipeline, [worker], rows, 1)
    assert "Traceback" not in worker.log()


def test_sigkill_with_windowed_features_learns_every_event_once(pipeline_factory):
    rng = random.Random(12)
    pipeline = pipeline_factory(partitions=2, model=LR.text, checkpoint_every=400, **WINDOWED)
    worker = pipeline.start_worker()
    rows = keyed_events(N)
    sender = pipeline.send_paced(
        pipeline.events, [orjson.dumps(r) for r in rows], [routing_key(r) for r in rows], RATE
    )
    kill_three_times(worker, rng)
    sender.join()
    expected = reference_by_shard(with_windows(rows), 2)
    assert_exact(pipeline, [worker], rows, 2, expected)
    assert "Traceback" not in worker.log()


#: Windows wider than the stream (event times 0..N): a key's tumbling count is all its events.
WIDE_WINDOWS = {
    "window": 10000,
    "hop_window": 10000,
    "hop_step": 1000,
    "window_expires": 20000,
    "window_features": "0,1",
    "key_cache": 8,
}


def rekeyed_order(pipeline, partitions):
    """Per shard, the events it must have taken, in order: ``<id>-rekeyed`` read back, without
    the copies the re-key stage sent again (an origin offset not above the last one taken);
    and how many copies there were."""
    records = run(consume_all(pipeline.bootstrap, f"{pipeline.id}-rekeyed"))
    order = {p: [] for p in range(partitions)}
    taken: dict[tuple[int, int], int] = {}
    copies = 0
    for record in records:
        origin = dict(record.headers)["sl-src"]
        raw_partition, offset = (int(v) for v in origin.split(b":"))
        if offset <= taken.get((record.partition, raw_partition), -1):
            copies += 1
            continue
        taken[(record.partition, raw_partition)] = offset
        order[record.partition].append(orjson.loads(record.value))
    return order, copies


def test_sigkill_with_rekeyed_round_robin_events_learns_and_counts_each_once(pipeline_factory):
    # 3 raw partitions written round-robin without Kafka keys; 2 shards by event key
    rng = random.Random(13)
    pipeline = pipeline_factory(
        partitions=2, model=LR.text, checkpoint_every=400, rekey=1, **WIDE_WINDOWS
    )
    run(ensure_topics(pipeline.settings["BROKER"], [pipeline.events], 3, 1))
    worker = pipeline.start_worker()
    rows = keyed_events(N)
    sender = pipeline.send_paced(
        pipeline.events,
        [orjson.dumps(r) for r in rows],
        [None] * N,
        RATE,
        [i % 3 for i in range(N)],
    )
    kill_three_times(worker, rng)
    sender.join()
    wait_for(lambda: sum(e["n_learned"] for e in worker.models()) >= N, timeout=180)
    order, copies = rekeyed_order(pipeline, 2)
    assert sorted(r["id"] for rows_of in order.values() for r in rows_of) == sorted(
        r["id"] for r in rows
    )  # every event once
    recipe = recipe_of(WIDE_WINDOWS)
    tumbling = recipe.spec.windows[0].name
    expected = {}
    for shard, taken in order.items():
        states, data = {}, []
        for row in taken:
            x = dict(row["x"])
            states[row["key"]], _ = recipe.step(states.get(row["key"]), row["ts"], x)
            data.append((orjson.loads(orjson.dumps(x)), row["y"]))
        model, metric = LR.build(), LR.new_metrics()
        evaluate.progressive_val_score(data, model, metric)
        expected[shard] = (len(data), model, metric)
    assert_exact(pipeline, [worker], rows, 2, expected)
    per_key: dict[str, int] = {}
    for row in rows:
        per_key[row["key"]] = per_key.get(row["key"], 0) + 1
    for key, n in per_key.items():
        assert worker.get(f"/features/{key}/")["features"][f"count_{tumbling}"] == n, key
    # each copy the re-key stage sent again was dropped, and counted once (in the checkpoints)
    assert worker.stats()["duplicates_dropped"] == copies
    assert "Traceback" not in worker.log()


def test_two_workers_one_killed_the_survivor_takes_over(pipeline_factory):
    # keyed events with windows: the survivor reads the dead worker's windows from the changelog
    pipeline = pipeline_factory(partitions=4, model=LR.text, checkpoint_every=300, **WINDOWED)
    first, second = pipeline.start_worker(), pipeline.start_worker()
    rows = keyed_events(N, seed=8)
    wait_for(lambda: len(first.stats().get("shards_owned", [])) == 2, what="shards split 2/2")
    sender = pipeline.send_paced(
        pipeline.events, [orjson.dumps(r) for r in rows], [routing_key(r) for r in rows], RATE
    )
    wait_for(
        lambda: sum(e["n_learned"] for e in second.models()) >= N // 8, what="second worker busy"
    )
    second.stop(signal.SIGKILL)
    wait_for(
        lambda: len(first.stats().get("shards_owned", [])) == 4,
        timeout=120,
        what="the survivor to own all 4 shards",
    )
    sender.join()
    assert_exact(pipeline, [first], rows, 4, reference_by_shard(with_windows(rows), 4))


def test_worker_added_mid_stream_takes_shards_over(pipeline_factory):
    pipeline = pipeline_factory(partitions=4, model=LR.text, checkpoint_every=300)
    first = pipeline.start_worker()
    rows = hyperplane_events(N, seed=9)
    sender = pipeline.send_paced(
        pipeline.events, [orjson.dumps(r) for r in rows], [r["id"].encode() for r in rows], RATE
    )
    wait_for(lambda: sum(e["n_learned"] for e in first.models()) >= N // 6, what="first busy")
    second = pipeline.start_worker()
    wait_for(
        lambda: len(second.stats().get("shards_owned", [])) == 2,
        timeout=120,
        what="the new worker to own 2 shards",
    )
    sender.join()
    assert_exact(pipeline, [first, second], rows, 4)


def test_sigterm_checkpoints_so_the_restart_replays_nothing(pipeline_factory):
    pipeline = pipeline_factory(
        partitions=1, model=LR.text, checkpoint_every=100000, checkpoint_seconds=3600
    )
    worker = pipeline.start_worker()
    rows = hyperplane_events(500)
    pipeline.send(
        pipeline.events, [orjson.dumps(r) for r in rows], [r["id"].encode() for r in rows]
    )
    wait_for(lambda: (e := worker.model(LR.name)) and e["n_learned"] == 500, what="500 learned")
    assert worker.stop(signal.SIGTERM) == 0
    worker.start()
    wait_for(lambda: worker.stats()["checkpoints_restored"] == 1, what="the checkpoint restored")
    assert worker.model(LR.name)["n_learned"] == 500
    pipeline.send(pipeline.events, [orjson.dumps(hyperplane_events(501)[-1])], [b"h500"])
    wait_for(lambda: worker.model(LR.name)["n_learned"] == 501, what="one more learned")
    assert worker.stats()["messages_skipped"] == 0  # nothing replayed
