"""``POST /predict/`` on two workers of two shards, asked with a real HTTP client (aiohttp):
the owner's champion answers for any key, whichever worker is asked; nothing is learned or
stored; bad requests get 400 with the reason."""

import asyncio
import pickle

import aiohttp
import orjson
import pytest

from tests.integration.harness import run, wait_for
from tests.integration.test_faults import LR

pytestmark = pytest.mark.integration

N = 400
KEYS = [f"card-{i}" for i in range(20)]


def events() -> list[bytes]:
    return [
        orjson.dumps(
            {
                "id": f"e{i}",
                "key": KEYS[i % len(KEYS)],
                "ts": 1000.0 + i,
                "x": {"amount": float(i % 13), "hour": float(i % 24)},
                "y": i % 3 == 0,
            }
        )
        for i in range(N)
    ]


def learn_all(pipeline, workers: list) -> None:
    """Send :func:`events` keyed by card; wait until the workers have learned every one and
    each holds a shard."""
    rows = events()
    pipeline.send(pipeline.events, rows, [orjson.loads(r)["key"].encode() for r in rows])
    wait_for(
        lambda: sum(e["n_learned"] for w in workers for e in w.models()) == len(rows)
        and all(w.models() for w in workers),
        what="every event learned, each worker holding a shard",
    )


async def post(worker, body, params=None) -> tuple[int, dict, object]:
    url = f"http://127.0.0.1:{worker.port}/predict/"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, params=params or {}) as response:
            return response.status, dict(response.headers), orjson.loads(await response.read())


def state(workers) -> list:
    """What learning would change: each model entry's counters, and each key's windows."""
    entries = sorted(
        (e["shard"], e["name"], e["n_learned"], e["n_predicted"], e["n_scored"])
        for w in workers
        for e in w.models()
    )
    windows = [w.get(f"/features/{key}/") for w in workers for key in KEYS]
    return [entries, windows]


def test_any_worker_answers_with_the_owner_s_champion_and_nothing_is_learned(pipeline_factory):
    pipeline = pipeline_factory(partitions=2, model=LR.text, predict_max=5, predict_max_bytes=4096)
    workers = [pipeline.start_worker(), pipeline.start_worker()]
    keys = [k.encode() for k in KEYS for _ in range(1)]
    learn_all(pipeline, workers)
    assert keys
    before = state(workers)
    queries = [
        {"id": f"q{i}", "key": key, "ts": 1000.0 + N + i, "x": {"amount": 5.0, "hour": 3.0}}
        for i, key in enumerate(KEYS)
    ]
    answers = {}
    for query in queries:
        got = []
        for worker in workers:  # the same answer, whichever worker is asked
            status, headers, body = run(post(worker, orjson.dumps(query)))
            assert status == 200, body
            got.append(body)
            assert headers["X-Streamlearn-Worker"] == body["worker"]
        assert got[0] == got[1]
        answers[query["key"]] = got[0]
    owners = {a["worker"] for a in answers.values()}
    assert len(owners) == 2  # keys of both shards, each answered by its owner
    # the answer is the owner's champion on the features it returns (a checkpoint's model)
    for key, answer in answers.items():
        assert answer["model"] == LR.name and answer["role"] == "champion"
        assert answer["id"] == f"q{KEYS.index(key)}" and answer["key"] == key
        assert answer["features"]["amount"] == 5.0 and "count_tumbling_1h" in answer["features"]
    # an array of keys of both shards: split, gathered, in the request's order
    status, _, body = run(post(workers[0], orjson.dumps(queries[:5]), {"all": "1"}))
    assert status == 200 and [a["id"] for a in body] == [q["id"] for q in queries[:5]]
    assert [{k: v for k, v in a.items() if k != "challengers"} for a in body] == [
        answers[q["key"]] for q in queries[:5]
    ]
    assert all(a["challengers"] == [] for a in body)  # (one model: no challenger)
    # nothing learned, counted or stored
    assert state(workers) == before
    # bad requests: 400 with the reason, and the workers go on
    for bad, says in [
        (b"{not json", "not JSON"),
        (b'{"id": "a", "key": "k"}', "event 0: missing field 'x'"),
        (orjson.dumps([queries[0]] * 6), "6 events: at most 5 per request"),
        (b"[" + b" " * 5000 + b"]", "the body is over 4096 bytes"),
        (orjson.dumps({**queries[0], "ts": 4e12}), "event 0: ts"),
        (b"[]", "no event in the array"),
    ]:
        status, _, body = run(post(workers[1], bad))
        assert status == 400 and says in body["error"], (bad[:40], body)
    assert all(w.alive for w in workers) and state(workers) == before
    assert pickle.dumps(before) == pickle.dumps(state(workers))


def test_many_requests_at_once_are_answered(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR.text)
    worker = pipeline.start_worker()
    rows = events()
    pipeline.send(pipeline.events, rows)
    wait_for(lambda: worker.models() and worker.models()[0]["n_learned"] == N, what="learned")
    query = orjson.dumps({"id": "q", "key": "card-1", "x": {"amount": 1.0, "hour": 2.0}})

    async def many() -> list[int]:
        return [s for s, _, _ in await asyncio.gather(*(post(worker, query) for _ in range(50)))]

    assert run(many()) == [200] * 50
