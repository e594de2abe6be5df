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
    # A stream's Ray Data tasks need room beside the trial (and they ask for 0.01 CPU).
    (["data.dataset=images", "data.path=shapes", "data.stream=true"], True, {"cpu": 0.9}),
])
def test_one_worker_trains_in_process_on_a_cpu_or_its_share_of_a_gpu(
    overrides: list[str], in_process: bool, resources: dict[str, float]
) -> None:
    spec = load_spec(REPO / "jobs" / "cnn_digits.yaml", overrides)
    assert runs_in_process(spec) is in_process
    assert trial_resources(spec) == resources


def test_a_streamed_ddp_worker_leaves_room_for_its_data_tasks() -> None:
    from trialforge.train.trial import worker_cpus

    streamed = ["data.dataset=images", "data.path=shapes", "data.stream=true", "train.workers=2"]
    assert worker_cpus(load_spec(REPO / "jobs" / "cnn_digits.yaml", streamed)) == 0.9
    assert worker_cpus(load_spec(REPO / "jobs" / "cnn_digits.yaml", ["train.workers=2"])) == 1.0
