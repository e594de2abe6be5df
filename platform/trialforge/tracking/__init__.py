"""MLflow tracking, used by the sweep's driver alone: `open_sweep_run` opens the parent run
and the `SweepRecorder` writes everything after it. Trials never import it.
"""

from trialforge.tracking.outage import TrackingUnavailableError
from trialforge.tracking.recorder import SweepRecorder
from trialforge.tracking.sweep_runs import TrackingTarget, open_sweep_run

__all__ = ["SweepRecorder", "TrackingTarget", "TrackingUnavailableError", "open_sweep_run"]
