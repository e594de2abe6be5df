"""Search: Ray Tune + Optuna (TPE) + a scheduler over a spec's space.

Its names load on first use, so `trialforge.search.runtime` can start Ray before the driver
has imported Tune, Optuna, MLflow and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialforge.search.progress import BestTrial, Progress
    from trialforge.search.resume import NothingToResumeError, resume_sweep
    from trialforge.search.sweep import SweepResult, run_sweep
    from trialforge.search.tuner import study_name

_HOMES = {
    "BestTrial": "progress", "Progress": "progress", "NothingToResumeError": "resume",
    "resume_sweep": "resume", "SweepResult": "sweep", "run_sweep": "sweep",
    "study_name": "tuner",
}
__all__ = [
    "BestTrial", "NothingToResumeError", "Progress", "SweepResult", "resume_sweep", "run_sweep",
    "study_name",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
