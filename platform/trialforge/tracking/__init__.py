"""MLflow tracking: the only package that talks to MLflow's tracking API (runs, metrics)."""

from trialforge.tracking.mlflow import SweepTracker, TrackingTarget
from trialforge.tracking.outage import TrackingUnavailableError
from trialforge.tracking.trial_run import TrialRun

__all__ = ["SweepTracker", "TrackingTarget", "TrackingUnavailableError", "TrialRun"]
