"""Trial schedulers: which trials to stop early (ASHA by default), from the spec."""

from __future__ import annotations

import logging

from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

from trialforge.spec import SchedulerConfig

logger = logging.getLogger(__name__)

#: The result key schedulers count in: epochs, which stay right when a trial resumes.
TIME_ATTR = "epoch"


def build_scheduler(config: SchedulerConfig, max_epochs: int) -> TrialScheduler:
    """The scheduler the spec names, budgeted in epochs up to `max_epochs`."""
    grace = min(config.grace_period, max_epochs)
    if grace < config.grace_period:
        logger.info("grace_period %d > epochs %d: using %d", config.grace_period, max_epochs, grace)
    if config.type == "asha":
        return ASHAScheduler(
            time_attr=TIME_ATTR,
            max_t=max_epochs,
            grace_period=grace,
            reduction_factor=config.reduction_factor,
        )
    if config.type == "hyperband":
        return HyperBandScheduler(
            time_attr=TIME_ATTR, max_t=max_epochs, reduction_factor=config.reduction_factor
        )
    if config.type == "median":
        return MedianStoppingRule(time_attr=TIME_ATTR, grace_period=grace, min_samples_required=3)
    return FIFOScheduler()
