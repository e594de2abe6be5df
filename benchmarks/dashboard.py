"""B7 dashboard: the compare page of a 1,000-run sweep in headless Chromium, and the cached
query time behind it.

The sweep is written through MLflow's, Optuna's and the catalog's clients
(tests/synthetic_sweep.py). `trialforge dashboard` serves it on 127.0.0.1; a page has
rendered when Streamlit's script is done, no skeleton is left and its Plotly chart has drawn
(the waits of Streamlit's own e2e tests, tests/browser.py). Cold: the first visit after the
server starts (every query runs); warm: later visits (queries cached, the browser fresh).

Run: python benchmarks/dashboard.py [--runs 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Figure, report

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "dashboards")]
TRIALFORGE = Path(sys.executable).with_name("trialforge")
TABS = ["Learning curves", "Parallel coordinates", "Importance", "Slices", "History",
        "Timeline"]
CHART_KEYS = dict(zip(TABS, ["curves", "parcoords", "importance", "slice", "history",
                             "timeline"], strict=True))


def query_seconds(home: object, sweep_id: str) -> tuple[float, float]:
    """The compare page's reads (runs, curves, study), uncached then cached."""
    import loaders  # the dashboard's own cached reads, outside a server (Streamlit's bare mode)
    import streamlit as st

    def reads() -> float:
        started = time.perf_counter()
        records = loaders.sweeps(home.db_url)  # type: ignore[attr-defined]
        records = records[records["id"] == sweep_id]
        runs = loaders.trials(home, records)
        loaders.histories(home.tracking_uri, tuple(runs["run_id"]),  # type: ignore[attr-defined]
                          ("val_accuracy",))
        loaders.study(home.db_url, records["study_name"].iloc[0])  # type: ignore[attr-defined]
        return time.perf_counter() - started

    st.cache_data.clear()
    cold = reads()
    return cold, min(reads() for _ in range(5))


def render_seconds(url: str, sweep_id: str, profile: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds until the compare page has drawn: the first visit after the server started,
    later visits in a new browser tab, in-app navigation from the Sweeps page, and each
    lazy tab after a click."""
    from browser import chromium, wait_chart, wait_rendered

    compare = f"{url}/compare?sweep={sweep_id}"
    times: dict[str, list[float]] = {"cold": [], "new tab": [], "navigation": [],
                                     **{tab: [] for tab in TABS[1:]}}
    with chromium(profile) as browser:
        for attempt in range(repeats + 1):
            page = browser.new_page()
            page.set_viewport_size({"width": 1400, "height": 2000})
            started = time.perf_counter()
            page.goto(compare)
            wait_rendered(page, charts=1, timeout_ms=120_000)
            times["cold" if attempt == 0 else "new tab"].append(time.perf_counter() - started)
            if attempt == 0:
                continue
            for tab in TABS[1:]:
                started = time.perf_counter()
                page.get_by_role("tab", name=tab).click()
                wait_chart(page, CHART_KEYS[tab], timeout_ms=120_000)
                times[tab].append(time.perf_counter() - started)
            page.get_by_role("link", name="Sweeps").click()
            page.wait_for_selector("[data-testid=stPlotlyChart]", state="detached")
            wait_rendered(page)
            started = time.perf_counter()
            page.get_by_role("link", name="Compare").click()
            wait_rendered(page, charts=1, timeout_ms=120_000)
            times["navigation"].append(time.perf_counter() - started)
            page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from synthetic_sweep import write_sweep
    from trialforge.home import Home

    with tempfile.TemporaryDirectory(prefix="trialforge-b7-") as tmp:
        root = Path(tmp) / "home"
        home = Home(root, f"sqlite:///{root}/mlflow.db", f"sqlite:///{root}/trialforge.db")
        started = time.perf_counter()
        sweep_id = write_sweep(home, runs=args.runs)
        print(f"wrote {args.runs} runs in {time.perf_counter() - started:.0f} s", flush=True)
        cold_query, cached_query = query_seconds(home, sweep_id)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("MLFLOW_TRACKING_URI", "TRIALFORGE_DB", "RAY_ADDRESS")}
        server = subprocess.Popen(
            [str(TRIALFORGE), "dashboard", "--home", str(root), "--port", str(port)],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from browser import wait_healthy

            url = f"http://127.0.0.1:{port}"
            wait_healthy(url)
            times = render_seconds(url, sweep_id, Path(tmp) / "profile", args.repeats)
        finally:
            server.terminate()
            server.wait(timeout=30)
    runs = f"{args.runs} runs"
    report("B7-dashboard", [
        Figure.of(f"compare page, {runs}, new browser tab", times["new tab"], "s",
                  target="<= 5", met=max(times["new tab"]) <= 5.0,
                  note="queries cached; includes Streamlit's own start in the tab (~1.6 s)"),
        Figure.of(f"compare page, {runs}, from the Sweeps page", times["navigation"], "s",
                  target="<= 5", met=max(times["navigation"]) <= 5.0,
                  note="a click in the sidebar, queries cached"),
        Figure.of(f"compare page, {runs}, first visit", times["cold"], "s",
                  note="server's first session: imports and every read"),
        *[Figure.of(f"tab {tab}, {runs}", times[tab], "s",
                    note="click to chart drawn (lazy tab)") for tab in TABS[1:]],
        Figure.of(f"compare page reads, {runs}, cached", [cached_query * 1000], "ms",
                  target="<= 200", met=cached_query <= 0.2),
        Figure.of(f"compare page reads, {runs}, uncached", [cold_query * 1000], "ms"),
    ], {"runs": args.runs, "times": times})


if __name__ == "__main__":
    main()
