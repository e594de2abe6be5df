"""What Tune reserves for a trial, and which path it trains on."""

from __future__ import annotations

import pytest

from support import REPO
from trialforge.spec import load_spec
from trialforge.train.trial import DRIVER_RESOURCES, runs_in_process, trial_resources


@pytest.mark.parametrize(("overrides", "in_process", "resources"), [
    ([], True, {"cpu": 1.0}),
    (["train.use_gpu=true"], True, {"cpu": 1.0, "gpu": 1.0}),
    (["train.use_gpu=true", "train.gpu_fraction=0.25"], True, {"cpu": 1.0, "gpu": 0.25}),
    (["train.workers=2"], False, DRIVER_RESOURCES),
    (["train.workers=2", "train.use_gpu=true"], False, DRIVER_RESOURCES),  # Train's workers
])
def test_one_worker_trains_in_process_on_a_cpu_or_its_share_of_a_gpu(
    overrides: list[str], in_process: bool, resources: dict[str, float]
) -> None:
    spec = load_spec(REPO / "jobs" / "cnn_digits.yaml", overrides)
    assert runs_in_process(spec) is in_process
    assert trial_resources(spec) == resources
