"""Headless Chromium driving a served dashboard, waiting the way Streamlit's own e2e tests do.

Debian's `chromium` through Playwright for Python: `playwright install` downloads browsers,
which cannot work here, so the system browser is named instead.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@contextmanager
def chromium(profile: Path) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile under `profile`."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context  # type: ignore[misc]
        finally:
            context.close()


def wait_healthy(url: str, timeout: float = 60) -> None:
    """Wait for Streamlit's health endpoint to answer `ok`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no healthy Streamlit at {url} after {timeout} s")
        time.sleep(0.25)


def wait_rendered(page: Page, charts: int = 0, timeout_ms: float = 60_000) -> None:
    """Wait until the script has run, no skeleton is left and `charts` Plotly charts drew."""
    page.wait_for_selector("[data-testid=stAppViewContainer]", timeout=timeout_ms)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]",
                           timeout=timeout_ms)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=stSkeleton]').length === 0",
        timeout=timeout_ms,
    )
    if charts:
        page.wait_for_function(
            """n => { const all = document.querySelectorAll('[data-testid=stPlotlyChart]');
                      return all.length >= n && [...all].every(c => c.querySelector('.main-svg'));
                    }""",
            arg=charts, timeout=timeout_ms,
        )


def wait_chart(page: Page, key: str, timeout_ms: float = 60_000) -> None:
    """Wait until the Plotly chart with Streamlit key `key` has drawn (after a tab switch the
    previous tab's chart is still on the page until the rerun replaces it)."""
    page.wait_for_selector(f".st-key-{key} .main-svg", timeout=timeout_ms)
    wait_rendered(page, charts=1, timeout_ms=timeout_ms)
