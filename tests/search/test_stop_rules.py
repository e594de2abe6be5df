"""`search.stop`: which condition ends a search, and the reason it gives (pure logic)."""

from __future__ import annotations

import pytest

from trialforge import parse_spec
from trialforge.errors import SpecError
from trialforge.search.progress import Progress
from trialforge.search.stop_rules import SweepStop
from trialforge.spec.sections import StopConfig


def _stop(mode: str = "max", **rules: float) -> tuple[SweepStop, Progress, list[float]]:
    progress = Progress(total=20, metric="val_accuracy", mode=mode, max_epochs=5)
    now = [0.0]
    return SweepStop(StopConfig(**rules), progress, clock=lambda: now[0]), progress, now


def test_a_target_reached_in_its_direction_stops_the_search() -> None:
    stop, progress, _ = _stop(target=0.95)
    progress.offer(0.9, "trial_a")
    assert not stop.stop_all() and stop.reason is None
    progress.offer(0.96, "trial_b")
    assert stop.stop_all()
    assert stop.reason == "target: val_accuracy 0.96 (trial_b) reached 0.95"
    lower, progress, _ = _stop("min", target=0.1)
    progress.offer(0.2, "trial_a")
    assert not lower.stop_all()
    progress.offer(0.1, "trial_b")
    assert lower.stop_all(), "a loss reaching its target from above"


def test_trials_that_no_longer_improve_the_best_stop_it() -> None:
    stop, _, _ = _stop(patience_trials=2)
    for value in (0.5, 0.7, 0.6, None):  # an improvement resets the count; no score counts
        stop.trial_ended(value)
        assert not stop.stop_all() or value is None
    assert stop.reason == "patience: 2 trials ended without improving the best val_accuracy"


def test_a_spent_time_budget_stops_it() -> None:
    stop, _, now = _stop(time_budget_s=60)
    now[0] = 59.9
    assert not stop.stop_all()
    now[0] = 60.0
    assert stop.stop_all() and stop.reason == "time budget: 60 s spent"


def test_stop_rules_need_a_condition_and_sane_values() -> None:
    with pytest.raises(SpecError, match=r"search\.stop: give at least one of target, "
                       r"patience_trials, time_budget_s"):
        parse_spec({"search": {"stop": {}}})
    with pytest.raises(SpecError, match=r"search\.stop\.patience_trials"):
        parse_spec({}, ["search.stop.patience_trials=0"])
    with pytest.raises(SpecError, match=r"search\.stop\.time_budget_s"):
        parse_spec({"search": {"stop": {"time_budget_s": -5}}})


def test_the_progress_line_names_the_confirm_stage() -> None:
    search = Progress(total=4, metric="val_accuracy", mode="max", max_epochs=2)
    confirm = Progress(total=6, metric="val_accuracy", mode="max", max_epochs=2,
                       stage="confirm")
    assert search.line().startswith("trials 0/4 done | 0 running")
    assert confirm.line().startswith("confirm: trials 0/6 done | 0 running")
