"""Fixtures of the report tests: a fake run on the demo dataset, a headless Chromium page (skipped, with
the install command, only where no browser can be had)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CHROMIUM = os.environ.get("INSTSEG_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL = "make browser  (= apt-get install -y chromium; pip install playwright)"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, demo_data):
    """A run folder on the demo val split with its report written; returns (run, expected counts, report)."""
    from fake_run import make_fake_run

    from instseg.report import write_run_report

    run = tmp_path_factory.mktemp("runs") / "exp"
    expected = make_fake_run(run, demo_data, seed=1, found=0.7, exact=True)
    report = write_run_report(run)
    return run, expected, report


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"playwright is not installed: {INSTALL}")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no chromium at {CHROMIUM}: {INSTALL}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=ARGS)
        yield b
        b.close()


class Page:
    """A page opened from disk, with the console errors it produced."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.goto(Path(path).resolve().as_uri())
        self.page.wait_for_load_state("load")

    def count(self, selector: str, visible: bool = False) -> int:
        if not visible:
            return self.page.locator(selector).count()
        return self.page.evaluate(f"""() => Array.from(document.querySelectorAll({selector!r}))
            .filter(e => e.getClientRects().length > 0).length""")

    def screenshot_variance(self, path: Path | None = None) -> float:
        import io

        import numpy as np
        from PIL import Image

        png = self.page.screenshot(path=str(path) if path else None)
        return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), np.float64).var())

    def close(self):
        self.page.close()


@pytest.fixture
def open_page(browser):
    pages = []

    def _open(path: Path) -> Page:
        p = Page(browser, path)
        pages.append(p)
        return p

    yield _open
    for p in pages:
        p.close()
