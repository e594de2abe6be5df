"""Search: Ray Tune + Optuna (TPE) + a scheduler over a spec's space."""

from trialforge.search.progress import BestTrial, Progress
from trialforge.search.resume import NothingToResumeError, resume_sweep
from trialforge.search.sweep import SweepResult, run_sweep
from trialforge.search.tuner import study_name

__all__ = [
    "BestTrial", "NothingToResumeError", "Progress", "SweepResult", "resume_sweep", "run_sweep",
    "study_name",
]
