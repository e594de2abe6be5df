"""Trial schedulers: which trials to stop early (ASHA by default, Pareto rank for several
metrics) or to evolve (PBT, PB2), from the spec."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

from trialforge.search.pareto import ParetoASHA
from trialforge.search.population import OnExploit, population_scheduler
from trialforge.spec import SchedulerConfig, SweepSpec

logger = logging.getLogger(__name__)

#: The result key schedulers count in: epochs, which stay right when a trial resumes.
TIME_ATTR = "epoch"


def build_scheduler(spec: SweepSpec, on_exploit: OnExploit | None = None) -> TrialScheduler:
    """The scheduler the spec names, budgeted in epochs up to `train.epochs`; a pbt/pb2
    one tells `on_exploit` of each exploit."""
    config, max_epochs = spec.search.scheduler, spec.train.epochs
    if config.evolves:
        return population_scheduler(spec, TIME_ATTR, on_exploit)
    grace = min(config.grace_period, max_epochs)
    if grace < config.grace_period:
        logger.info("grace_period %d > epochs %d: using %d", config.grace_period, max_epochs, grace)
    if config.type == "pareto":
        return ParetoASHA(spec.search.objectives, list(spec.search.directions), max_epochs,
                          grace, config.reduction_factor, TIME_ATTR)
    return SCHEDULERS[config.type](config, max_epochs, grace)


#: `search.scheduler.type` -> the scheduler, from its config, the epochs and the grace period.
SCHEDULERS: dict[str, Callable[[SchedulerConfig, int, int], TrialScheduler]] = {
    "asha": lambda config, max_epochs, grace: ASHAScheduler(
        time_attr=TIME_ATTR, max_t=max_epochs, grace_period=grace,
        reduction_factor=config.reduction_factor),
    "hyperband": lambda config, max_epochs, grace: HyperBandScheduler(
        time_attr=TIME_ATTR, max_t=max_epochs, reduction_factor=config.reduction_factor),
    "median": lambda config, max_epochs, grace: MedianStoppingRule(
        time_attr=TIME_ATTR, grace_period=grace, min_samples_required=3),
    "fifo": lambda config, max_epochs, grace: FIFOScheduler(),
}


class SchedulerMemory(Callback):
    """Keeps ASHA's rungs (and the Pareto rungs) in Tune's experiment checkpoint, so a
    resumed sweep keeps them.

    `Tuner.restore` restores the searcher and the callbacks but builds the scheduler anew:
    without its rungs, every weak trial after a resume would run to the end. This callback's
    state is the rungs' recorded results; restoring it fills the new scheduler's. Recording
    is idempotent (a trial is recorded once per rung), so epochs that a resumed trial trains
    again change nothing. ASHA keeps no public accessor for its rungs, hence the private
    reads; the other schedulers start over on resume.
    """

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        if isinstance(self.scheduler, ParetoASHA):
            return {"pareto": {str(rung): {trial: list(point) for trial, point in rung_.items()}
                               for rung, rung_ in self.scheduler.recorded.items()}}
        if not isinstance(self.scheduler, ASHAScheduler):
            return None
        return {
            "rungs": [[dict(recorded) for _, recorded in bracket._rungs]
                      for bracket in self.scheduler._brackets],
            "num_stopped": self.scheduler._num_stopped,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if isinstance(self.scheduler, ParetoASHA):
            for rung, recorded in state.get("pareto", {}).items():
                self.scheduler.recorded[int(rung)].update(
                    {trial: tuple(point) for trial, point in recorded.items()})
            return
        if not isinstance(self.scheduler, ASHAScheduler):
            return
        for bracket, rungs in zip(self.scheduler._brackets, state["rungs"], strict=True):
            for (_, recorded), saved in zip(bracket._rungs, rungs, strict=True):
                recorded.update(saved)
        self.scheduler._num_stopped = state["num_stopped"]
