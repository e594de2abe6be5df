"""A non-editable install: the wheel carries the dashboard's app and the example specs.

The wheel is installed with --no-deps into a folder of its own, on top of the test venv's
packages (no second venv): PYTHONPATH puts it before the editable checkout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support import REPO, STORE_VARIABLES

pytestmark = pytest.mark.e2e

CLI = "import sys; from trialforge.cli import main; sys.argv[0] = 'trialforge'; main()"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_installed_wheel_starts_the_dashboard_and_runs_its_example(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip, "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "wheel")], capture_output=True, text=True,
                           check=False, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("trialforge-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, check=False, timeout=300)
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    env.update(PYTHONPATH=str(site), TRIALFORGE_HOME=str(tmp_path / "home"))
    where = tmp_path / "project"
    where.mkdir()

    def trialforge(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", CLI, *args], cwd=where, env=env,
                              capture_output=True, text=True, check=False, timeout=300)

    package = subprocess.run(
        [sys.executable, "-c", "import trialforge; print(trialforge.__file__)"],
        env=env, capture_output=True, text=True, check=True, cwd=where)
    assert package.stdout.startswith(str(site)), "the wheel's package, not the checkout's"

    init = trialforge("init")
    assert init.returncode == 0, init.stderr
    assert (where / "jobs" / "cnn_digits.yaml").is_file()
    # Its own local Ray: the trial workers then import the wheel's package too.
    sweep = trialforge("sweep", "run", "jobs/cnn_digits.yaml", "search.trials=1",
                       "train.epochs=1")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "finished" in sweep.stdout

    port = _free_port()
    dashboard = subprocess.Popen([sys.executable, "-c", CLI, "dashboard", "--port", str(port)],
                                 cwd=where, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert dashboard.poll() is None, dashboard.communicate()[0][-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.3)
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).ok
    finally:
        dashboard.terminate()
        dashboard.wait(30)
