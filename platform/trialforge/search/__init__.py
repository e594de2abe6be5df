"""Search: Ray Tune + Optuna (TPE) + a scheduler over a spec's space."""

from trialforge.search.monitor import BestTrial, Progress
from trialforge.search.sweep import SweepResult, run_sweep, study_name

__all__ = ["BestTrial", "Progress", "SweepResult", "run_sweep", "study_name"]
