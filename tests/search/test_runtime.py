"""Ray started on a thread of its own while the driver goes on, then used from the main one;
started locally, as an embedded sweep does, without idle workers that trials never use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import REPO

pytestmark = pytest.mark.e2e

# A fresh process: in this one Ray is connected already.
EARLY_START = """
import time
from pathlib import Path

import psutil
import ray
from trialforge.search.runtime import connect_ray, start_ray_soon
from trialforge.spec import load_spec

spec = load_spec(Path("jobs/cnn_digits.yaml"), [])
start_ray_soon(spec)
start_ray_soon(spec)  # once is enough
import torch  # the driver's own work meanwhile
assert connect_ray(spec) is True, "this process started Ray, so it owns it"
assert ray.get(ray.put(7)) == 7, "usable from the main thread once the starter is done"
time.sleep(1)  # Ray would start its prestarted workers as the driver registers
idle = [p.pid for p in psutil.Process().children(recursive=True)
        if p.name().startswith("ray::IDLE")]  # the title Ray gives a worker with no task
assert not idle, f"idle workers no trial can use: {idle}"
ray.shutdown()
print("ok")
"""


def test_ray_started_early_serves_the_driver() -> None:
    local = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # an embedded sweep's
    done = subprocess.run([sys.executable, "-c", EARLY_START], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=local)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
    assert "SIGTERM handler" not in done.stderr
