"""The dashboard in a real browser, and the Prometheus endpoint, of a worker that is learning."""

import os

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import ARTIFACTS, wait_for
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


def scrape(worker) -> dict[tuple[str, tuple], float]:
    import urllib.request

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
        page.goto(f"http://127.0.0.1:{worker.port}/dashboard/")
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
        assert page.locator("td[data-counter=dead_letters]").inner_text() == "1"
        assert "missing field 'ts'" in page.locator("#reasons").inner_text()
        assert page.locator("#feature-keys").inner_text() == "7"
        page.fill("#key", "card-3")
        page.click("#lookup button")
        page.wait_for_function("document.getElementById('key-result').textContent.includes('n')")
        assert '"key": "card-3"' in page.locator("#key-result").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
