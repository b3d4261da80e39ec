"""Write the first screen of the demo report as docs/report-1400.png and docs/report-400.png.

Run from the repository root (about 20 s)::

    .venv/bin/python docs/screenshots.py

It builds the bank-marketing demo exactly as ``assay demo`` does (in a temporary directory, so
the page names the ledger ``assay-demo/ledger.duckdb``) and photographs the page's first
900 px in headless Chromium at 1400 px and 400 px wide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from assay.demo.build import build_demo

DOCS = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = (1400, 400)
FOLD = 900


def main() -> None:
    """Build the demo and write one PNG per width under ``docs/``."""
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        page_path = build_demo(Path("assay-demo")).html.resolve()
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": FOLD})
                page.goto(page_path.as_uri())
                page.wait_for_load_state("load")
                target = DOCS / f"report-{width}.png"
                page.screenshot(path=str(target))
                page.close()
                print(f"wrote {target}")
            browser.close()


if __name__ == "__main__":
    main()
