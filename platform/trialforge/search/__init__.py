"""Search: Ray Tune + Optuna (TPE) + a scheduler over a spec's space."""

from trialforge.search.sweep import BestTrial, SweepResult, run_sweep, study_name

__all__ = ["BestTrial", "SweepResult", "run_sweep", "study_name"]
