"""Workers on several machines, here two loopback addresses, and the web token.

Two workers of one app with two shards bind 127.0.0.1 and 127.0.0.2 (on Linux all of 127/8 is
this machine's loopback), each advertising its own address as STREAMLEARN_WEB_URL, both with
STREAMLEARN_WEB_TOKEN: ``POST /predict/`` asked of either worker is answered by both, each for
its shard, forwarded to the other's advertised URL with the token; without the token or with
another every request is refused. Then the dashboard in a browser: it asks for the token once
and draws from the JSON views with it.
"""

import aiohttp
import orjson
import pytest

from tests.integration.harness import run
from tests.integration.test_dashboard import CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_faults import LR
from tests.integration.test_predict import KEYS, N, learn_all

pytestmark = pytest.mark.integration

TOKEN = "it-web-token-5be1d0c7"
HOSTS = ("127.0.0.1", "127.0.0.2")


async def post(worker, body: bytes, headers: dict) -> tuple[int, dict, object]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{worker.url}/predict/", data=body, headers=headers) as r:
            return r.status, dict(r.headers), orjson.loads(await r.read())


def test_two_workers_on_two_addresses_answer_for_each_other_with_the_token(pipeline_factory):
    pipeline = pipeline_factory(partitions=2, model=LR.text, web_token=TOKEN)
    workers = [pipeline.start_worker(host=host) for host in HOSTS]
    urls = [w.url for w in workers]
    assert [w.host for w in workers] == list(HOSTS)
    learn_all(pipeline, workers)
    for worker in workers:  # each advertises its own address, and knows the other's
        stats = worker.stats()
        assert stats["this_worker"] == worker.url
        assert sorted(u.rstrip("/") for u in stats["workers"]) == urls
    queries = [
        {"id": f"q{i}", "key": key, "ts": 1000.0 + N + i, "x": {"amount": 5.0, "hour": 3.0}}
        for i, key in enumerate(KEYS)
    ]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    got = []
    for worker in workers:
        status, headers, body = run(post(worker, orjson.dumps(queries), bearer))
        assert status == 200, body
        assert [a["id"] for a in body] == [q["id"] for q in queries]
        assert {a["worker"] for a in body} == set(urls)  # keys of both shards, both computed
        assert headers["X-Streamlearn-Worker"] == ", ".join(urls)
        got.append(body)
    assert got[0] == got[1]  # the same answers, whichever worker is asked
    by_worker = {url: {a["key"] for a in got[0] if a["worker"] == url} for url in urls}
    for worker in workers:  # one event at a time, too: its shard's owner answers
        for query in queries[:4]:
            status, headers, body = run(post(worker, orjson.dumps(query), bearer))
            assert status == 200 and query["key"] in by_worker[body["worker"]]
            assert headers["X-Streamlearn-Worker"] == body["worker"]
    # without the token, or with another, every worker refuses every request
    for worker in workers:
        for headers, reason in [
            ({}, "this worker needs Authorization: Bearer <token>"),
            ({"Authorization": "Bearer not-the-token"}, "wrong token"),
        ]:
            status, answer_headers, body = run(post(worker, orjson.dumps(queries[0]), headers))
            assert (status, body) == (401, {"error": reason})
            assert answer_headers["WWW-Authenticate"].startswith("Bearer")
        assert worker.get("/stats/") is not None  # (the harness sends the token)
        worker.pipeline.settings["WEB_TOKEN"] = "not-the-token"
        assert worker.get("/stats/") is None  # 401
        worker.pipeline.settings["WEB_TOKEN"] = TOKEN
    for worker in workers:
        assert TOKEN not in worker.log() and TOKEN not in str(worker.stats())


def test_the_dashboard_asks_for_the_token_once_and_sends_it(pipeline_factory):
    from playwright.sync_api import sync_playwright

    pipeline = pipeline_factory(partitions=1, model=LR.text, web_token=TOKEN)
    worker = pipeline.start_worker()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        response = page.goto(f"{worker.url}/")
        assert response.status == 401  # the token form, nothing of the worker's
        assert "this_worker" not in page.content() and TOKEN not in page.content()
        page.fill("#token", "not-the-token")
        page.press("#token", "Enter")
        page.wait_for_function("document.getElementById('why').textContent === 'wrong token'")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        # the dashboard, drawn from /stats/ and /models/ fetched with the token
        page.wait_for_function(
            f"document.getElementById('worker')?.textContent === {worker.url!r}", timeout=30_000
        )
        assert page.url == f"{worker.url}/dashboard/"
        page.wait_for_function("document.getElementById('updated').textContent !== 'never'")
        assert page.locator("#error").inner_text() == ""
        # a JSON view opened in the same tab: the kept token, no form
        page.goto(f"{worker.url}/stats/")
        page.wait_for_function("document.querySelector('pre')?.textContent.includes('this_worker')")
        assert orjson.loads(page.locator("pre").inner_text())["this_worker"] == worker.url
        browser.close()
    assert TOKEN not in worker.log()
