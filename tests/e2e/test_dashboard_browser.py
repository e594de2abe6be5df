"""`trialforge dashboard` served on 127.0.0.1 and driven in headless Chromium: every page
renders its charts, with screenshots kept under test-artifacts/dashboard/."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from browser import chromium, wait_chart, wait_healthy, wait_rendered
from support import REPO, STORE_VARIABLES, TRIALFORGE
from trialforge import query
from trialforge.home import Home

pytestmark = pytest.mark.e2e
SHOTS = Path(os.environ.get("TRIALFORGE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "dashboard"
TABS = {"Learning curves": "curves", "Parallel coordinates": "parcoords",
        "Importance": "importance", "Slices": "slice", "History": "history",
        "Timeline": "timeline"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tiny_sweep: Home, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard as a user starts it, on a free port of 127.0.0.1."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    log = tmp_path_factory.mktemp("dashboard") / "dashboard.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(TRIALFORGE), "dashboard", "--home", str(tiny_sweep.root), "--port", str(port)],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def open_page(browser: BrowserContext, url: str, charts: int = 0) -> Page:
    page = browser.new_page()
    page.set_viewport_size({"width": 1400, "height": 2000})
    page.goto(url)
    wait_rendered(page, charts)
    assert page.locator("[data-testid=stException]").count() == 0
    return page


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_deep_link_opened_first_shows_the_app(
    served: str, browser: BrowserContext, tiny_sweep: Home
) -> None:
    """A bookmark is often the first page a fresh server serves: it gets the app's own
    navigation and sidebar, not Streamlit's list of script files."""
    sweep_id = query.sweeps(tiny_sweep.db_url)["id"].iloc[0]
    page = open_page(browser, f"{served}/compare?sweep={sweep_id}", charts=1)  # first visit
    navigation = page.locator("[data-testid=stSidebarNav]")
    expect(navigation).to_contain_text("Compare")
    for title in ("Sweeps", "Run", "Models"):
        expect(navigation).to_contain_text(title)
    assert "app" not in navigation.inner_text().split(), "no raw list of script files"
    assert page.get_by_text("MLflow:").is_visible(), "the sidebar's store lines"


def test_sweeps_page(served: str, browser: BrowserContext, tiny_sweep: Home) -> None:
    page = open_page(browser, served)
    assert page.get_by_role("heading", name="Sweeps").is_visible()
    assert page.locator("[data-testid=stDataFrame]").count() == 1
    assert page.get_by_text("MLflow:").is_visible()
    shot(page, "1-sweeps")


def test_compare_page_draws_every_chart_tab(
    served: str, browser: BrowserContext, tiny_sweep: Home
) -> None:
    sweep_id = query.sweeps(tiny_sweep.db_url)["id"].iloc[0]
    page = open_page(browser, f"{served}/compare?sweep={sweep_id}", charts=1)
    assert page.locator("[data-testid=stDataFrame]").count() == 1
    for number, (tab, key) in enumerate(TABS.items(), start=1):
        page.get_by_role("tab", name=tab).click()
        wait_chart(page, key)
        chart = page.locator("[data-testid=stPlotlyChart]")
        assert chart.count() == 1, tab  # lazy: the open tab's chart only
        # Plotly drew marks, not an empty frame: lines, bars, points or parallel axes.
        marks = chart.locator(".scatterlayer .trace, .barlayer .point, .gl-container canvas, "
                              ".parcoords .axis")
        assert marks.count() > 0, tab
        assert page.locator("[data-testid=stException]").count() == 0, tab
        shot(page, f"2-compare-{number}-{tab.lower().replace(' ', '-')}")
    assert "chart=Timeline" in page.url  # a chart can be linked to


def test_run_page(served: str, browser: BrowserContext, tiny_sweep: Home) -> None:
    run_id = query.models(tiny_sweep.tracking_uri)["run_id"].iloc[0]
    page = open_page(browser, f"{served}/run?run={run_id}", charts=1)
    assert page.get_by_text("Parameters").is_visible()
    image = page.locator("[data-testid=stImage] img")
    image.wait_for()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_by_role("button", name="Download checkpoint").is_visible()
    shot(page, "3-run")


def test_models_page_asks_before_moving_an_alias(
    served: str, browser: BrowserContext
) -> None:
    page = open_page(browser, f"{served}/models")
    assert page.locator("[data-testid=stDataFrame]").count() == 1
    page.get_by_role("button", name="Set alias ...").click()
    # Playwright's expectations wait for the rerun: right after a click the page may not
    # have started it yet.
    warning = page.locator("[data-testid=stAlert]")
    expect(warning).to_contain_text("Point alias champion of digits-cnn at version 1")
    shot(page, "4-models-confirm")
    page.get_by_role("button", name="Cancel").click()
    expect(warning).to_have_count(0)
