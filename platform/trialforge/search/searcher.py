"""Optuna as Tune's searcher, with the study kept in SQL and no trial left RUNNING."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from trialforge.tracking.mlflow import TAG_TRIAL


class OptunaSearcher(OptunaSearch):
    """Ray's `OptunaSearch`, telling Optuna a diverged trial (non-finite objective) FAILED.

    Ray passes the NaN on; Optuna refuses it, Ray swallows the error, and the trial stays
    RUNNING in the study forever. As FAIL, TPE leaves it out of its model. Also keeps
    per-epoch values out of the study (see `on_trial_result`) and records the Tune trial id
    on each Optuna trial.
    """

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        new = trial_id not in self._ot_trials
        config = super().suggest(trial_id)
        if new and trial_id in self._ot_trials:
            # The run's tag as the trial's attribute: joins the study to the MLflow runs.
            self._ot_trials[trial_id].set_user_attr(TAG_TRIAL, trial_id)
        return config

    def restore(self, checkpoint_path: str) -> None:
        """Restore the searcher's state after its driver died, and fail the study's trials
        that Tune will not resume: those suggested after Tune last saved its state."""
        super().restore(checkpoint_path)
        study = self._ot_study
        assert study is not None  # set by the constructor, and restored with the rest
        known = {trial.number for trial in self._ot_trials.values()}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number not in known:
                study.tell(trial.number, state=TrialState.FAIL)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Per-epoch values stay out of the study: learning curves live in MLflow, TPE does not
        # read them, and ASHA (not Optuna's pruner) stops trials. One SQL write less an epoch.
        return None

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        if result is not None and not all(_finite(result.get(str(m))) for m in metrics):
            result, error = None, True
        super().on_trial_complete(trial_id, result=result, error=error)


def fail_running_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """Mark trials still RUNNING in the study as FAIL (their worker died); return how many."""
    study_id = storage.get_study_id_from_name(study_name)
    running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(running)


def pareto_front(
    storage: optuna.storages.BaseStorage, study_name: str, metrics: list[str]
) -> list[dict[str, Any]]:
    """A multi-objective study's Pareto-optimal trials: number, params, objective values."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    return [
        {"number": trial.number, "params": trial.params,
         "values": dict(zip(metrics, trial.values or [], strict=False))}
        for trial in sorted(study.best_trials, key=lambda trial: trial.number)
    ]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
