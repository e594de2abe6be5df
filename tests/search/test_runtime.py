"""Ray started on a thread of its own while the driver goes on, then used from the main one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support import REPO

pytestmark = pytest.mark.e2e

# A fresh process: in this one Ray is connected already.
EARLY_START = """
import ray
from trialforge.search.runtime import connect_ray, start_ray_soon
from trialforge.spec import load_spec
from pathlib import Path
spec = load_spec(Path("jobs/cnn_digits.yaml"), [])
start_ray_soon(spec)
start_ray_soon(spec)  # once is enough
import torch  # the driver's own work meanwhile
assert connect_ray(spec) is True, "this process connected, so it owns the connection"
assert ray.get(ray.put(7)) == 7, "usable from the main thread once the starter is done"
ray.shutdown()
print("ok")
"""


def test_ray_started_early_serves_the_driver(ray_address: str) -> None:
    done = subprocess.run([sys.executable, "-c", EARLY_START], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RAY_ADDRESS": ray_address})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
    assert "SIGTERM handler" not in done.stderr
