"""The dashboard in a real browser, and the Prometheus endpoint, of a worker that is learning."""

import http.client
import os
import signal
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.settings import DEV_SECRET
from tests.integration.harness import ARTIFACTS, SECRET, wait_for
from tests.integration.test_pipeline import LR, LR_NAME, phishing_events

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


#: the warning of a worker whose checkpoint secret is the public default
SECRET_WARNING = "STREAMLEARN_CHECKPOINT_SECRET is not set"
#: the counters the dashboard always shows (app/web/views.py's DASHBOARD_COUNTERS), in order
COUNTERS = [
    "dead_letters",
    "dead_labels",
    "orphan_labels",
    "expired_events",
    "model_errors",
    "duplicates_dropped",
    "checkpoints_restored",
]


def scrape(worker) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_prometheus_counters_follow_the_stream(pipeline_factory):
    pipeline = pipeline_factory(partitions=1, model=LR)
    worker = pipeline.start_worker()
    labels = (("model", LR_NAME), ("shard", "0"))
    pipeline.send(pipeline.events, phishing_events(0, 100) + [b"not json"])
    wait_for(lambda: worker.model(LR_NAME)["n_learned"] == 100, what="100 learned")
    first = scrape(worker)
    assert first[("streamlearn_learned_total", labels)] == 100
    assert first[("streamlearn_predictions_total", labels)] == 100
    assert first[("streamlearn_pipeline_events_total", (("kind", "dead_letters"),))] == 1
    accuracy = first[("streamlearn_model_metric", (("metric", "Accuracy"), *labels))]
    assert accuracy == worker.model(LR_NAME)["metrics"]["Accuracy"]
    age = ("streamlearn_checkpoint_age_seconds", (("shard", "0"),))
    assert 0 <= wait_for(lambda: scrape(worker).get(age, -1) + 1, what="a checkpoint") - 1 < 60

    pipeline.send(pipeline.events, phishing_events(100, 250))
    wait_for(lambda: worker.model(LR_NAME)["n_learned"] == 250, what="250 learned")
    second = scrape(worker)
    assert second[("streamlearn_learned_total", labels)] == 250
    assert second[("streamlearn_predictions_total", labels)] == 250
    events_in = ("streamlearn_messages_received_total", (("topic", pipeline.events),))
    assert second[events_in] == 251 > 0


def root(worker) -> tuple[int, str | None]:
    """Status and Location of ``GET /``, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response.status, response.getheader("Location")
    finally:
        connection.close()


def status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status


def test_dashboard_shows_what_models_says(pipeline_factory):
    from playwright.sync_api import sync_playwright

    pipeline = pipeline_factory(partitions=1, model=LR, checkpoint_every=100, window=3600)
    worker = pipeline.start_worker()
    rows = [
        orjson.dumps(
            {
                "id": f"k{i}",
                "key": f"card-{i % 7}",
                "ts": 1000.0 + i,
                "x": {"amount": float(i % 13)},
                "y": i % 3 == 0,
            }
        )
        for i in range(400)
    ]
    pipeline.send(pipeline.events, rows[:200] + [b'{"id": "bad"}'])
    wait_for(lambda: worker.model(LR_NAME)["n_learned"] == 200, what="200 learned")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        base = f"http://127.0.0.1:{worker.port}"
        assert root(worker) == (302, "/dashboard/")
        page.goto(base + "/")  # as README and the demo say: "/" leads to the dashboard
        assert page.url == base + "/dashboard/"
        pipeline.send(pipeline.events, rows[200:])
        wait_for(lambda: worker.model(LR_NAME)["n_learned"] == 400, what="400 learned")
        # charts have points once two checkpoints and two polls went by
        page.wait_for_function(
            "document.querySelectorAll('svg.curve').length === 3 && "
            "[...document.querySelectorAll('svg.curve')].every(s => +s.dataset.points >= 4) && "
            "+document.getElementById('throughput').dataset.points > 0",
            timeout=60_000,
        )
        page.wait_for_function(
            "document.querySelector('td[data-field=n_learned]')?.textContent === '400'",
            timeout=30_000,
        )
        entry = worker.model(LR_NAME)
        row = page.locator(f"tr[data-model='{LR_NAME}'][data-shard='0']")
        assert row.locator("td[data-field=n_learned]").inner_text() == str(entry["n_learned"])
        assert row.locator("td[data-field=n_predicted]").inner_text() == str(entry["n_predicted"])
        # the seven counters docs/operations.md lists, first and in its order, zeros included
        shown = page.locator("#counters td[data-counter]")
        assert shown.evaluate_all("tds => tds.map(td => td.dataset.counter)")[:7] == COUNTERS
        values = {k: page.locator(f"td[data-counter={k}]").inner_text() for k in COUNTERS}
        assert values == {k: "1" if k == "dead_letters" else "0" for k in COUNTERS}
        assert page.locator("#shards").inner_text() == "shard 0"
        # rates: the y-axis starts at 0 whatever the lowest rate
        throughput = page.locator("#throughput")
        assert throughput.get_attribute("data-y0") == "0"
        assert float(throughput.get_attribute("data-y1")) > 0
        assert page.evaluate("[yRange([3, 5], true), yRange([3, 5], false)]") == [[0, 5], [3, 5]]
        assert page.evaluate("[shardsText([]), shardsText([0]), shardsText([0, 1])]") == [
            "shards: none",
            "shard 0",
            "shards 0, 1",
        ]
        # the links to the JSON views and Faust's own pages answer
        links = page.locator("#links a").evaluate_all("as => as.map(a => a.href)")
        assert [link.removeprefix(base) for link in links] == [
            "/models/",
            "/stats/",
            "/model-events/",
            "/metrics",
            "/router/",
            "/table/",
        ]
        assert [status(link) for link in links] == [200] * 6
        # the checkpoint secret is set: no warning anywhere, and the secret is shown nowhere
        assert page.locator("#warnings li").count() == 0
        assert worker.stats()["warnings"] == []
        assert SECRET_WARNING not in worker.log()
        assert SECRET not in worker.log() + page.content() + str(worker.stats())
        assert "missing field 'ts'" in page.locator("#reasons").inner_text()
        assert page.locator("#feature-keys").inner_text() == "7"
        page.fill("#key", "card-3")
        page.click("#lookup button")
        page.wait_for_function("document.getElementById('key-result').textContent.includes('n')")
        assert '"key": "card-3"' in page.locator("#key-result").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()


def test_the_default_checkpoint_secret_is_warned_about_at_every_start(pipeline_factory):
    from playwright.sync_api import sync_playwright

    pipeline = pipeline_factory(partitions=1, model=LR)
    del pipeline.settings["CHECKPOINT_SECRET"]  # the harness sets one; a user may not
    worker = pipeline.start_worker()
    wait_for(lambda: worker.log().count(SECRET_WARNING) == 1, what="the warning in the log")
    (warning,) = worker.stats()["warnings"]
    assert warning.startswith(SECRET_WARNING)
    assert root(worker) == (302, "/dashboard/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{worker.port}/")
        page.wait_for_function("document.querySelectorAll('#warnings li').length === 1")
        assert warning in page.locator("#warnings").inner_text()
        assert DEV_SECRET not in page.content()
        browser.close()
    assert DEV_SECRET not in worker.log() + str(worker.stats())
    # and again at the next start (the log file is appended to)
    assert worker.stop(signal.SIGTERM) is not None
    worker.start()
    wait_for(lambda: worker.log().count(SECRET_WARNING) == 2, what="the warning again")
    assert worker.stats()["warnings"] == [warning]


def test_the_dashboard_marks_a_promotion_on_the_curves_and_lists_it(pipeline_factory, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.integration.test_promotion import CONFIG
    from tests.unit.test_promotion import RULE, reference, stream

    config = tmp_path / "streamlearn.toml"
    config.write_text(CONFIG)
    pipeline = pipeline_factory(partitions=1, config=str(config), checkpoint_every=200)
    worker = pipeline.start_worker()
    events = stream(2000)
    expected = reference(events, RULE)
    pipeline.send(pipeline.events, [orjson.dumps(e) for e in events])
    wait_for(
        lambda: any(e["type"] == "promotion" for e in worker.get("/model-events/")["events"]),
        what="the promotion",
    )
    (promotion,) = [e for e in worker.get("/model-events/")["events"] if e["type"] == "promotion"]
    assert promotion["event_id"] == f"e{expected}" and promotion["n_learned"] == expected + 1
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(f"http://127.0.0.1:{worker.port}/dashboard/")
        page.wait_for_selector("#model-events tr[data-type=promotion]", timeout=30_000)
        row = page.locator("#model-events tr[data-type=promotion]").inner_text()
        assert "lr" in row and str(expected + 1) in row and "leads by" in row
        # a mark on each learning curve, where the promotion happened
        page.wait_for_function(
            "document.querySelectorAll('svg.curve line.mark[data-type=promotion]').length >= 1",
            timeout=30_000,
        )
        title = page.locator("svg.curve line.mark[data-type=promotion] title").first.text_content()
        assert title.startswith("promotion #0 lr")
        browser.close()
