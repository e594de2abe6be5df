"""MLflow tracking: the only package that talks to MLflow's tracking API (runs, metrics).

The sweep's driver is its only user: `SweepTracker` for the parent run, `TrialRecorder` for
every trial's run. Trials never import it.
"""

from trialforge.tracking.outage import TrackingUnavailableError
from trialforge.tracking.recorder import TrialRecorder
from trialforge.tracking.sweep_runs import SweepTracker, TrackingTarget

__all__ = ["SweepTracker", "TrackingTarget", "TrackingUnavailableError", "TrialRecorder"]
