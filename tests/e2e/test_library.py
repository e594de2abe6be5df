"""trialforge as a library: `run_sweep` and `load_model` in one process, several homes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from trialforge import load_model, parse_spec, resolve_home, run_sweep
from trialforge.train.loop import trial_data

pytestmark = pytest.mark.e2e


def test_sweeps_in_one_process_keep_to_their_own_home(
    tmp_path: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = parse_spec({"name": "library", "model": {"family": "mlp", "depth": 1},
                       "train": {"epochs": 2}, "search": {"trials": 1, "concurrency": 1}})
    first = run_sweep(spec, resolve_home(tmp_path / "a"))
    assert "MLFLOW_TRACKING_URI" not in os.environ, "a sweep leaves no process-wide setting"
    second = run_sweep(spec, resolve_home(tmp_path / "b"))
    for result in (first, second):
        assert result.model is not None
        assert result.model.version == "1", "each home has its own registry"
        assert set(result.phases) >= {"stores", "ray", "search", "register"}
    # load_model reads the home's registry by default, as the CLI does.
    monkeypatch.setenv("TRIALFORGE_HOME", str(tmp_path / "b"))
    model = load_model("models:/library@champion")
    data = trial_data(spec)
    with torch.no_grad():
        accuracy = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
    assert second.best is not None
    assert accuracy == pytest.approx(second.best.value, abs=1e-6)
