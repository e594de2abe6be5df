"""Optuna studies read back for analysis: importance, slices, history, the Pareto front.

The dashboard's charts come from `optuna.visualization`, which takes a study. Reading gives
plain frozen trials (cacheable); `as_study` rebuilds an in-memory study from a selection of
them, so every Optuna chart follows the runs a user picked.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import optuna
import sqlalchemy.exc
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from trialforge.catalog import catalog_exists
from trialforge.tracking.tags import TAG_TRIAL


@dataclass
class StudyTrials:
    """A study's directions and trials, as read from its storage."""

    name: str
    directions: list[StudyDirection]
    trials: list[FrozenTrial]

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """Each searched parameter's distribution (conditional ones included)."""
        found: dict[str, BaseDistribution] = {}
        for trial in self.trials:
            found.update(trial.distributions)
        return found

    @property
    def log_params(self) -> set[str]:
        """Parameters sampled on a log scale: their axes are logarithmic too."""
        return {name for name, dist in self.distributions.items()
                if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log}

    @property
    def completed(self) -> int:
        return sum(trial.state == TrialState.COMPLETE for trial in self.trials)


def study_trials(db_url: str, study_name: str) -> StudyTrials | None:
    """The study's trials, or None where there is none (a sweep without a search space)."""
    if not catalog_exists(db_url):
        return None
    # Read-only: never create Optuna's tables in a database that does not have them.
    storage = optuna.storages.RDBStorage(db_url, skip_table_creation=True)
    try:
        study_id = storage.get_study_id_from_name(study_name)
        return StudyTrials(
            name=study_name,
            directions=list(storage.get_study_directions(study_id)),
            trials=list(storage.get_all_trials(study_id)),
        )
    except (KeyError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        return None
    finally:
        storage.remove_session()
        storage.engine.dispose()


def as_study(data: StudyTrials, trial_ids: Collection[str] | None = None) -> optuna.Study:
    """An in-memory study of the trials whose Tune trial id is in `trial_ids` (all: None;
    all too for a study from before trial ids were recorded on it)."""
    study = optuna.create_study(directions=data.directions, study_name=data.name)
    if not any(TAG_TRIAL in trial.user_attrs for trial in data.trials):
        trial_ids = None
    chosen = [
        trial for trial in data.trials
        if trial_ids is None or trial.user_attrs.get(TAG_TRIAL) in trial_ids
    ]
    study.add_trials(chosen)
    return study
