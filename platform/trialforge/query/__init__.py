"""Read-side functions the CLI and the dashboard share; each returns plain data."""

from trialforge.query.catalog import SWEEP_COLUMNS, filter_sweeps, sweep, sweeps, trial_ends
from trialforge.query.registry import MODEL_COLUMNS, models
from trialforge.query.runs import RunDetail, artifact_file, histories, run, trials
from trialforge.query.studies import StudyTrials, as_study, study_trials

__all__ = [
    "MODEL_COLUMNS",
    "SWEEP_COLUMNS",
    "RunDetail",
    "StudyTrials",
    "artifact_file",
    "as_study",
    "filter_sweeps",
    "histories",
    "models",
    "run",
    "study_trials",
    "sweep",
    "sweeps",
    "trial_ends",
    "trials",
]
