"""Save a PNG of a running worker's dashboard: python scripts/dashboard_screenshot.py URL OUT.png"""

import sys
import time

from playwright.sync_api import sync_playwright

ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

url, out = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url)
    time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 20)  # let the throughput chart fill
    page.screenshot(path=out, full_page=True)
    browser.close()
