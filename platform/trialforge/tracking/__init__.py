"""MLflow tracking: the only package that talks to MLflow's tracking API (runs, metrics)."""

from trialforge.tracking.mlflow import SweepTracker, TrackingTarget, TrialRun

__all__ = ["SweepTracker", "TrackingTarget", "TrialRun"]
