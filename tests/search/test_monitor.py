"""How the driver names the end of each trial, and the progress line (pure logic)."""

from __future__ import annotations

import math

from trialforge.search.monitor import Progress, trial_outcome


def test_trial_outcomes() -> None:
    assert trial_outcome({"epoch": 12, "trial_state": "completed"}) == "completed"
    assert trial_outcome({"epoch": 4, "trial_state": "running"}) == "stopped_early"
    assert trial_outcome({"epoch": 2, "trial_state": "diverged"}) == "diverged"
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
