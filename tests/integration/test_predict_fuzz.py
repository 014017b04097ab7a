"""``POST /predict/`` fuzzed over HTTP: thousands of random bodies to real workers never get a
500 or a dropped connection, only 200 or 400 with a reason, and the workers learn nothing.

The bodies are ``tests/predict_bodies.py``'s from a seed that every failure message names
(``PREDICT_FUZZ_SEED`` picks another). Good events name keys of both shards, so that the asked
worker forwards some to the other."""

import asyncio
import os
import time
from collections.abc import Callable

import aiohttp
import orjson
import pytest

from tests.integration.harness import run, wait_for
from tests.integration.test_faults import LR
from tests.integration.test_predict import KEYS, learn_all, post, state
from tests.predict_bodies import bodies

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("PREDICT_FUZZ_SEED", "20261207"))
#: bodies sent to the first worker, and to the second
FIRST, SECOND = 8_000, 2_500
#: requests in flight at once
CONCURRENT = 6
MOST, MOST_BYTES, MAX_FUTURE = 20, 8192, 3600.0


async def fuzz(url: str, seed: int, count: int, problem_of: Callable) -> dict[int, int]:
    """Send ``count`` bodies from ``seed`` to ``url``, ``CONCURRENT`` at a time over one
    session; check each answer with ``problem_of(body, status, answer, payload)`` (what is wrong
    with it, or None); the count of each status."""
    now = time.time()
    todo = list(enumerate(bodies(seed, count, KEYS, now, MOST, MOST_BYTES, MAX_FUTURE)))
    statuses: dict[int, int] = {}
    problems: list[str] = []

    async def one(session: aiohttp.ClientSession) -> None:
        while todo and len(problems) < 5:
            n, body = todo.pop()
            where = f"seed {seed}, body {n} ({body.kind}): {body.data[:160]!r}"
            try:
                async with session.post(url, data=body.data) as response:
                    status, payload = response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                problems.append(f"{where}: {exc!r}")
                continue
            statuses[status] = statuses.get(status, 0) + 1
            try:
                answer = orjson.loads(payload)
            except orjson.JSONDecodeError:
                answer = None
            problem = problem_of(body, status, answer, payload)
            if problem is not None:
                problems.append(f"{where}: {problem}")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        await asyncio.gather(*(one(session) for _ in range(CONCURRENT)))
    assert not problems, "\n".join(problems)
    return statuses


def contract_problem(body, status: int, answer, payload: bytes) -> str | None:
    """The events contract's bodies: 200 or 400 with a reason, the status the body expects, a
    reason naming the field the body breaks."""
    if status not in (200, 400):
        return f"{status} {payload[:300]!r}"
    if status == 400 and not (type(answer) is dict and type(answer["error"]) is str):
        return f"400 without a reason: {payload[:300]!r}"
    if body.expect is not None and status != body.expect:
        return f"{status}, expected {body.expect}: {payload[:300]!r}"
    if status == 400 and body.field is not None and body.field not in answer["error"]:
        return f"{answer['error']!r} does not name {body.field}"
    return None


def mapped_problem(body, status: int, answer, payload: bytes) -> str | None:
    """Through a mapping (which bodies it takes differs from the events contract): 200, or 400
    with a reason."""
    if status == 400 and type(answer) is dict and type(answer.get("error")) is str:
        return None
    return None if status == 200 else f"{status} {payload[:300]!r}"


def test_random_bodies_get_200_or_400_never_500_and_nothing_is_learned(pipeline_factory):
    pipeline = pipeline_factory(
        partitions=2,
        model=LR.text,
        predict_max=MOST,
        predict_max_bytes=MOST_BYTES,
        max_future=MAX_FUTURE,
    )
    workers = [pipeline.start_worker(), pipeline.start_worker()]
    learn_all(pipeline, workers)
    before = state(workers)
    first = run(fuzz(url_of(workers[0]), SEED, FIRST, contract_problem))
    second = run(fuzz(url_of(workers[1]), SEED + 1, SECOND, contract_problem))
    assert set(first) == set(second) == {200, 400}, (first, second)
    assert sum(first.values()) == FIRST and sum(second.values()) == SECOND
    # the workers go on: a good request of each shard is answered, and nothing was learned
    assert all(w.alive for w in workers)
    query = [{"id": f"q{i}", "key": key, "x": {"amount": 2.0}} for i, key in enumerate(KEYS)]
    status, _, body = run(post(workers[0], orjson.dumps(query)))
    assert status == 200 and [a["id"] for a in body] == [q["id"] for q in query]
    assert {a["worker"] for a in body} == {f"http://127.0.0.1:{w.port}" for w in workers}
    assert state(workers) == before


def test_with_an_events_mapping_random_bodies_get_200_or_400(pipeline_factory):
    # the mapping's shape: the same bodies, their fields read by path (x.amount a feature)
    pipeline = pipeline_factory(
        partitions=1,
        model=LR.text,
        predict_max=MOST,
        predict_max_bytes=MOST_BYTES,
    )
    pipeline.settings["CONFIG"] = str(mapping_file(pipeline))
    worker = pipeline.start_worker()
    wait_for(worker.models, what="the worker to hold its shard")
    before = state([worker])
    statuses = run(fuzz(url_of(worker), SEED + 2, 2_000, mapped_problem))
    assert set(statuses) == {200, 400}, statuses
    assert worker.alive and state([worker]) == before


def url_of(worker) -> str:
    return f"http://127.0.0.1:{worker.port}/predict/"


def mapping_file(pipeline):
    from tests.integration.harness import ARTIFACTS

    path = ARTIFACTS / pipeline.id / "streamlearn.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[events]\nid = "id"\nkey = "key"\ntime = "ts"\nlabel = "y"\n')
    return path
