"""``POST /predict/`` while a worker is killed: requests for keys of both shards flow to the
survivor while the other worker dies (SIGKILL) and the group rebalances. Every answer is the
owner's answer from before the kill (the stream is paused: the survivor restores the same model
and windows from the checkpoint), or 503 with Retry-After; never another status, a wrong answer
or a client timeout; and in the end the survivor answers every key itself."""

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.integration.harness import WAIT, run, wait_for
from tests.integration.test_faults import LR
from tests.integration.test_predict import KEYS, N, learn_all

pytestmark = pytest.mark.integration

#: seconds the rebalance and the restore may take, after the kill
REBALANCED = 150.0


def without_worker(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "worker"}


async def flow(survivor, victim, requests: list[dict], reference: list[dict]) -> dict:
    """Send ``requests`` one after another, round and round, two at a time, to ``survivor``;
    kill ``victim`` once a few rounds are answered; stop after a whole round is answered by the
    survivor itself. Every answer is checked as it comes; the count of each outcome."""
    url = f"http://127.0.0.1:{survivor.port}/predict/"
    me = f"http://127.0.0.1:{survivor.port}"
    seen = {"200": 0, "503": 0, "200 after the kill": 0}
    killed_at: float | None = None
    sent = 0
    own_streak = 0  # answers in a row computed by the survivor, after the kill
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:

        async def ask(i: int) -> None:
            nonlocal own_streak
            async with session.post(url, data=orjson.dumps(requests[i])) as response:
                status, payload = response.status, await response.read()
                retry = response.headers.get("Retry-After")
            body = orjson.loads(payload)
            if status == 503:
                assert retry == "1" and type(body["error"]) is str, body
                seen["503"] += 1
                own_streak = 0
                return
            assert status == 200, (status, body)
            assert without_worker(body) == reference[i], (i, body, reference[i])
            seen["200"] += 1
            if killed_at is not None:
                seen["200 after the kill"] += 1
                own_streak = own_streak + 1 if body["worker"] == me else 0

        while own_streak < len(requests):
            if killed_at is None and sent >= 3 * len(requests):
                victim.process.kill()  # SIGKILL, while requests are in flight
                killed_at = time.monotonic()
            if killed_at is not None:
                assert time.monotonic() - killed_at < REBALANCED, f"not served yet: {seen}"
            await asyncio.gather(ask(sent % len(requests)), ask((sent + 1) % len(requests)))
            sent += 2
    return seen


def test_requests_flowing_while_a_worker_is_killed_get_the_owner_s_answer_or_503(
    pipeline_factory,
):
    pipeline = pipeline_factory(partitions=2, model=LR.text)
    workers = [pipeline.start_worker(), pipeline.start_worker()]
    learn_all(pipeline, workers)
    # the survivor will restore the victim's shard from its checkpoint: wait until it covers all
    for shard in (0, 1):
        wait_for(
            lambda s=shard: (c := pipeline.last_checkpoint(s))
            and c["models"][LR.name]["n_learned"] + 0 > 0
            and c["models"][LR.name]["n_learned"]
            == sum(e["n_learned"] for w in workers for e in w.models() if e["shard"] == s),
            what=f"shard {shard}'s checkpoint of every event",
        )
    requests = [
        {"id": f"q{i}", "key": key, "ts": 2000.0 + i, "x": {"amount": 3.0 + i, "hour": 4.0}}
        for i, key in enumerate(KEYS)
    ]

    async def references() -> list[list[dict]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            out = []
            for worker in workers:
                url = f"http://127.0.0.1:{worker.port}/predict/"
                async with session.post(url, data=orjson.dumps(requests)) as response:
                    assert response.status == 200
                    out.append(orjson.loads(await response.read()))
            return out

    first, second = run(references())
    reference = [without_worker(a) for a in first]
    assert reference == [without_worker(a) for a in second]
    owners = {a["worker"] for a in first}
    assert owners == {f"http://127.0.0.1:{w.port}" for w in workers}  # keys of both shards
    survivor, victim = workers
    seen = run(flow(survivor, victim, requests, reference))
    assert not victim.alive and survivor.alive
    assert seen["200 after the kill"] >= len(requests), seen
    # the survivor holds both shards now, restored with nothing new learned
    entries = wait_for(lambda: len(survivor.models()) == 2 and survivor.models(), timeout=WAIT)
    assert sum(e["n_learned"] for e in entries) == N
