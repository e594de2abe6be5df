"""The Pareto scheduler (`search.scheduler.type: pareto`): trials stopped by their
non-domination rank at each rung, never by the first metric alone (pure logic)."""

from __future__ import annotations

import math
from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from trialforge import parse_spec
from trialforge.search.pareto import ParetoASHA, pareto_ranks
from trialforge.search.schedulers import SchedulerMemory, build_scheduler


def test_ranks_peel_fronts_and_a_nan_ranks_last() -> None:
    points = [(0.1, 5.0), (0.2, 1.0), (0.3, 6.0), (0.1, 5.0), (math.nan, 0.0)]
    assert pareto_ranks(points) == [0, 0, 1, 0, math.inf]


def _result(scheduler: ParetoASHA, trial: str, epoch: int, accuracy: float,
            params: float) -> str:
    return scheduler.on_trial_result(None, SimpleNamespace(trial_id=trial),
                                     {"epoch": epoch, "val_accuracy": accuracy, "params": params})


def test_the_whole_front_goes_on_and_a_dominated_trial_stops() -> None:
    scheduler = ParetoASHA(["val_accuracy", "params"], ["max", "min"], max_t=9, grace_period=1,
                           reduction_factor=3, time_attr="epoch")
    assert sorted(scheduler.recorded) == [1, 3]
    go = TrialScheduler.CONTINUE
    assert _result(scheduler, "accurate", 1, 0.9, 1000) == go
    assert _result(scheduler, "small", 1, 0.5, 10) == go, "worse first metric, on the front"
    # Beaten on both by `accurate`: 2 better-ranked of 3 is more than 1/3 of them.
    assert _result(scheduler, "dominated", 1, 0.4, 2000) == TrialScheduler.STOP
    assert _result(scheduler, "accurate", 2, 0.91, 1000) == go, "between rungs"
    asha = build_scheduler(parse_spec({}, ["search.scheduler.type=asha"]))
    assert not isinstance(asha, ParetoASHA)


def test_several_metrics_default_to_it_and_a_resumed_sweep_keeps_its_rungs() -> None:
    spec = parse_spec({}, ["search.metric=[val_accuracy,params]"])
    assert spec.search.scheduler.type == "pareto"
    written_back = parse_spec(spec.to_dict())
    assert written_back.search.scheduler.type == "pareto"
    before = build_scheduler(spec)
    assert isinstance(before, ParetoASHA)
    _result(before, "a", 1, 0.9, 100)
    restored = build_scheduler(spec)
    SchedulerMemory(restored).set_state(SchedulerMemory(before).get_state() or {})
    assert isinstance(restored, ParetoASHA) and restored.recorded == before.recorded
    explicit = parse_spec({}, ["search.metric=[val_accuracy,params]", "search.scheduler.type=fifo"])
    assert explicit.search.scheduler.type == "fifo", "a scheduler the spec names is kept"
