"""How the driver names the end of each trial, and the progress line (pure logic)."""

from __future__ import annotations

import math

import pytest

from trialforge.search.monitor import FailFast, Progress, TrialEnd, TrialMonitor, trial_outcome


def test_trial_outcomes() -> None:
    assert trial_outcome({"epoch": 12, "trial_state": "completed"}) == "completed"
    assert trial_outcome({"epoch": 4, "trial_state": "running"}) == "stopped_early"
    assert trial_outcome({"epoch": 2, "trial_state": "diverged"}) == "diverged"
    assert trial_outcome({"epoch": 0, "trial_state": "failed"}) == "failed"
    assert trial_outcome(None) == "stopped_early"


def test_progress_keeps_the_best_finite_value() -> None:
    progress = Progress(total=4, metric="val_loss", mode="min", max_epochs=3)
    for value, trial in [(0.9, "a"), (math.nan, "b"), (0.4, "c"), (0.5, "d"), ("x", "e")]:
        progress.offer(value, trial)
    assert progress.best is not None
    assert (progress.best.value, progress.best.trial) == (0.4, "c")
    progress.running.add("d")
    progress.stopped_early = 1
    progress.completed = 2
    line = progress.line()
    assert "trials 3/4 done" in line and "1 running" in line and "1 stopped early" in line
    assert "best val_loss 0.4000 (c)" in line


class _Trial:  # what the monitor reads of a Tune trial
    def __init__(self, trial_id: str, last_result: dict[str, object]) -> None:
        self.trial_id, self.last_result, self.config = trial_id, last_result, {}

    def __str__(self) -> str:
        return f"trial_{self.trial_id}"


def _failed(trial_id: str, error: str, kind: str = "code_error") -> _Trial:
    return _Trial(trial_id, {"trial_state": "failed", "trial_failure": kind,
                             "trial_error": error, "epoch": 0})


def _monitor(ends: list[TrialEnd]) -> TrialMonitor:
    progress = Progress(total=8, metric="val_accuracy", mode="max", max_epochs=3)
    return TrialMonitor(progress, None, None, on_trial_end=ends.append, fail_fast=3)


def test_the_first_trials_failing_alike_stop_the_sweep() -> None:
    ends: list[TrialEnd] = []
    monitor = _monitor(ends)
    stopper = FailFast(monitor)
    for trial_id in "abc":
        assert not stopper.stop_all()
        monitor.on_trial_complete(0, [], _failed(trial_id, "ValueError: bad"))
    assert stopper.stop_all() and monitor.stop_error == "ValueError: bad"
    assert [(end.state, end.failure) for end in ends] == [("failed", "code_error")] * 3
    assert monitor.progress.failed == 3


@pytest.mark.parametrize("third", [
    _failed("c", "ValueError: other"),  # another error
    _failed("c", "CUDA out of memory", kind="oom"),  # not a code error
    _Trial("c", {"trial_state": "completed", "epoch": 3, "val_accuracy": 0.9}),
])
def test_a_sweep_goes_on_unless_its_first_trials_fail_alike(third: _Trial) -> None:
    monitor = _monitor([])
    monitor.on_trial_complete(0, [], _failed("a", "ValueError: bad"))
    monitor.on_trial_complete(0, [], _failed("b", "ValueError: bad"))
    monitor.on_trial_complete(0, [], third)
    monitor.on_trial_complete(0, [], _failed("d", "ValueError: bad"))  # too late to count
    assert monitor.stop_error is None and not FailFast(monitor).stop_all()
