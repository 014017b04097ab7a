"""Save a PNG of a running worker's dashboard: python scripts/dashboard_screenshot.py URL OUT.png"""

import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.test_dashboard import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

url, out = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url)
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 20)  # let the throughput chart fill
    page.screenshot(path=out, full_page=True)
    browser.close()
