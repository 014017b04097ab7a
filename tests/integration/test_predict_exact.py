"""``POST /predict/`` equals River offline, to the bit: two workers of two shards learn a stream
with windows and delayed labels; once it is paused and every label learned, each answer's
``proba`` is River's ``predict_proba_one`` of the model trained offline on the shard's events, on
the row the offline features code gives the request's event appended to them, whichever worker is
asked; and the requests change no counter, window or model."""

import asyncio
import copy
import pickle
import random

import aiohttp
import orjson
import pytest

from app.config import Config
from app.contracts.mapping import Origin
from app.features.offline import OfflineFeatures
from app.kafka.outbox import partition_of
from app.models.shard import to_pairs
from app.settings import Settings
from tests.integration.harness import consume_all, run, wait_for
from tests.integration.test_faults import LR
from tests.integration.test_predict import KEYS, state
from tests.model_state import canonical, first_difference

pytestmark = pytest.mark.integration

N = 600
REQUESTS = 200
SEED = 27


def shard_of(key: str) -> int:
    return partition_of(key.encode(), 2)


def stream(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """``N`` events of ``KEYS``, every third labelled inline, the others later: the events, and
    the labels in the order they are sent. A delayed event's id is in the same partition of
    the labels (and join) topics as its key's shard, so that each shard learns its labels in
    the order they were sent."""
    events, labels = [], []
    for i in range(N):
        key = KEYS[rng.randrange(len(KEYS))]
        x = {"amount": round(rng.uniform(0, 300), 2), "hour": float(rng.randrange(24))}
        if rng.random() < 0.4:
            x["merchant"] = rng.choice(["web", "shop", "atm"])
        y = rng.random() < 0.3
        event = {"id": f"e{i}", "key": key, "ts": 1000.0 + 3 * i + rng.random(), "x": x}
        if i % 3 == 0:
            event["y"] = y
        else:
            suffix = 0
            while partition_of(f"e{i}-{suffix}".encode(), 2) != shard_of(key):
                suffix += 1
            event["id"] = f"e{i}-{suffix}"
            labels.append({"id": event["id"], "y": y, "ts": event["ts"] + 5})
        events.append(event)
    return events, labels


def offline_shards(events: list[dict], labels: list[dict]) -> list[tuple]:
    """Per shard, River offline: the features code fed with the shard's events in partition
    order, and the model that predicted each of them in that order (River's StandardScaler
    adds a feature it has not seen to its running statistics when it predicts), learning the
    inline labels as they come, then the delayed ones in the order of their labels."""
    out = []
    for shard in range(2):
        offline = OfflineFeatures(Config.build(Settings(partitions=2, model=LR.text)))
        model, delayed = LR.build(), {}
        for offset, event in enumerate(e for e in events if shard_of(e["key"]) == shard):
            origin = Origin("events", shard, offset, event["key"].encode(), 0)
            row = offline.take(orjson.dumps(event), origin)
            model.predict_proba_one(row["x"])
            if "y" in event:
                model.learn_one(row["x"], event["y"])
            else:  # (the features as the join carries them: JSON)
                delayed[event["id"]] = orjson.loads(orjson.dumps(row["x"]))
        for label in labels:
            if label["id"] in delayed:
                model.learn_one(delayed[label["id"]], label["y"])
        out.append((offline, copy.deepcopy(offline.windows.states), model))
    return out


def expected_answer(shards: list[tuple], request: dict) -> tuple[dict, list]:
    """The offline row of ``request`` appended to its shard's events, and River's probabilities
    on it (as JSON carries them)."""
    offline, states, model = shards[shard_of(request["key"])]
    offline.windows.states = copy.deepcopy(states)
    row = offline.take(orjson.dumps(request), Origin("events", 0, 0, None, 0))
    # (on a copy: River adds a feature it has not seen to the scaler's statistics as it predicts)
    proba = to_pairs(copy.deepcopy(model).predict_proba_one(row["x"]))
    return orjson.loads(orjson.dumps(row["x"])), orjson.loads(orjson.dumps(proba))


async def ask(port: int, requests: list[dict]) -> list[tuple[int, dict]]:
    """POST each request alone, four at a time, over one session."""
    url = f"http://127.0.0.1:{port}/predict/"
    gate = asyncio.Semaphore(4)
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(request: dict) -> tuple[int, dict]:
            async with gate, session.post(url, data=orjson.dumps(request)) as response:
                return response.status, orjson.loads(await response.read())

        return await asyncio.gather(*(one(r) for r in requests))


def test_answers_equal_river_offline_to_the_bit_and_change_nothing(pipeline_factory):
    rng = random.Random(SEED)
    events, labels = stream(rng)
    assert {shard_of(e["key"]) for e in events} == {0, 1} and len(labels) == 400
    pipeline = pipeline_factory(partitions=2, model=LR.text)
    workers = [pipeline.start_worker(), pipeline.start_worker()]
    wait_for(lambda: all(w.models() for w in workers), what="each worker holding a shard")
    pipeline.send(
        pipeline.events, [orjson.dumps(e) for e in events], [e["key"].encode() for e in events]
    )

    def totals() -> tuple[int, int]:
        entries = [e for w in workers for e in w.models()]
        return sum(e["n_predicted"] for e in entries), sum(e["n_learned"] for e in entries)

    wait_for(lambda: totals() == (N, N // 3), what="every event predicted, inline labels learned")
    pipeline.send(
        pipeline.labels, [orjson.dumps(b) for b in labels], [b["id"].encode() for b in labels]
    )
    wait_for(lambda: totals() == (N, N), what="every label learned")
    learned = {shard: sum(1 for e in events if shard_of(e["key"]) == shard) for shard in (0, 1)}
    checkpoints = [
        wait_for(
            lambda s=s: (c := pipeline.last_checkpoint(s))
            and c["models"][LR.name]["n_learned"] == learned[s]
            and c,
            what=f"shard {s}'s checkpoint of every label",
        )
        for s in (0, 1)
    ]
    shards = offline_shards(events, labels)
    for s in (0, 1):  # the reference is the model the stream learned
        saved = checkpoints[s]["models"][LR.name]["model"]
        assert first_difference(canonical(saved), canonical(shards[s][2])) is None
    before = state(workers)

    last = events[-1]["ts"]
    requests = []
    for i in range(REQUESTS):
        x = {"amount": round(rng.uniform(0, 300), 2), "hour": float(rng.randrange(24))}
        if rng.random() < 0.4:
            x["merchant"] = rng.choice(["web", "shop", "atm", "new"])
        ts = last + rng.choice([rng.uniform(-900, 0), rng.uniform(0, 3600), rng.uniform(0, 9000)])
        requests.append({"id": f"q{i}", "key": KEYS[i % len(KEYS)], "ts": ts, "x": x})
    expected = [expected_answer(shards, r) for r in requests]
    answered = {}
    for worker in workers:
        answers = run(ask(worker.port, requests))
        for request, (status, answer), (features, proba) in zip(
            requests, answers, expected, strict=True
        ):
            assert status == 200, answer
            assert answer["features"] == features, request
            assert answer["proba"] == proba, (request, answer["proba"], proba)
            assert answer["y_pred"] == max(proba, key=lambda p: p[1])[0]
        answered[worker.port] = {a["worker"] for _, a in answers}
    assert all(len(owners) == 2 for owners in answered.values())  # both shards, both ways
    assert state(workers) == before

    # the live models: a command (refused: promoting the champion) makes each shard write a
    # checkpoint of them now; they are the models learned, byte for byte
    sent = pipeline.command("models", "promote", LR.name)
    assert sent.returncode == 0, sent.stderr
    for s in (0, 1):
        after = wait_for(
            lambda s=s: (c := pipeline.last_checkpoint(s))
            and any(e["type"] == "command_refused" for e in c["recent_events"])
            and c,
            what=f"shard {s}'s checkpoint after the command",
        )
        live, saved = after["models"][LR.name], checkpoints[s]["models"][LR.name]
        assert live["n_learned"] == learned[s] and live["n_predicted"] == saved["n_predicted"]
        assert first_difference(canonical(live["model"]), canonical(saved["model"])) is None
        assert pickle.dumps(live["model"]) == pickle.dumps(saved["model"])
        assert first_difference(canonical(live["model"]), canonical(shards[s][2])) is None
    refusals = [
        r
        for r in run(consume_all(pipeline.bootstrap, f"{pipeline.id}-model-events"))
        if orjson.loads(r.value)["type"] == "command_refused"
    ]
    assert len(refusals) == 2
    assert state(workers) == before
