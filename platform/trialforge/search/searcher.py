"""Optuna as Tune's searcher, with the study kept in SQL and no trial left RUNNING."""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from trialforge.search.constraints import Constraints
from trialforge.tracking.tags import TAG_ORIGIN, TAG_TRIAL
from trialforge.train.contract import BestEpoch, Report, trial_outcome
from trialforge.train.contract import TrialState as Outcome


class OptunaSearcher(OptunaSearch):
    """Ray's `OptunaSearch`, told each trial by trialforge's scoring rule (`train.contract`).

    - every epoch's objective is an intermediate value (step = epoch), as Optuna's own
      pruners would see it;
    - a trial that ran its budget is COMPLETE with its best epoch's values, one the scheduler
      stopped is PRUNED, and one that diverged or failed is FAIL (Ray would pass a NaN on,
      which Optuna refuses, leaving the trial RUNNING forever);
    - each Optuna trial carries the Tune trial id, the MLflow run's tag, as an attribute;
    - with `search.constraints`, each scored trial's slacks (`Trial.set_constraint`).
    """

    def __init__(self, *args: Any, constraints: Constraints | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.constraints = constraints  # `search.constraints`: each scored trial's slacks
        self._bests: dict[str, BestEpoch] = {}  # trial id -> its best epoch so far
        self._steps: dict[str, int] = {}  # trial id -> the last epoch it was told

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

    @property
    def _objectives(self) -> list[str]:
        return list(self.metric) if isinstance(self.metric, list) else [str(self.metric)]

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        epoch = int(result.get(Report.EPOCH.value, 0))
        if epoch <= self._steps.get(trial_id, 0):
            return  # told already: a report sent again, or an epoch a resumed trial retrained
        self._steps[trial_id] = epoch
        first = self._objectives[0]
        self._bests.setdefault(trial_id, BestEpoch(first, self._directions()[0])).offer(result)
        value = result.get(first, math.nan)
        if len(self._objectives) == 1 and _finite(value):  # Optuna takes one objective's
            self._ot_trials[trial_id].report(float(value), step=epoch)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if result is not None and result.get(Report.STATE.value) != Outcome.FAILED.value:
            # The scheduler's stopping result reaches the searcher only here.
            self.on_trial_result(trial_id, result)
        outcome = Outcome.FAILED if error else trial_outcome(result)
        best = self._bests.get(trial_id)
        values: list[float] | None = None
        if outcome == Outcome.COMPLETED and best is not None and best.value is not None:
            values = [best.metrics.get(metric, float("nan")) for metric in self._objectives]
        if outcome == Outcome.COMPLETED and (values is None or not all(map(_finite, values))):
            outcome = Outcome.FAILED  # no finite score: nothing for the sampler to learn from
        state = {Outcome.COMPLETED: TrialState.COMPLETE,
                 Outcome.STOPPED_EARLY: TrialState.PRUNED}.get(outcome, TrialState.FAIL)
        study = self._ot_study
        assert study is not None
        if self.constraints is not None and best is not None and state != TrialState.FAIL:
            for key, slack in self.constraints.slacks(best.metrics).items():
                self._ot_trials[trial_id].set_constraint(key, slack)
        study.tell(self._ot_trials[trial_id],
                   values if state == TrialState.COMPLETE else None, state=state)
        self._completed_trials.add(trial_id)

    def _directions(self) -> list[str]:
        modes = self.mode if isinstance(self.mode, list) else [self.mode]
        return [str(mode) for mode in modes]


def fail_running_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """Mark trials still RUNNING in the study as FAIL (their worker died); return how many."""
    study_id = storage.get_study_id_from_name(study_name)
    running = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(running)


def optuna_champion(storage: optuna.storages.BaseStorage, study_name: str) -> str | None:
    """The Tune trial id of the study's best trial (None if no trial completed)."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    try:
        best = study.best_trial
    except ValueError:  # no COMPLETE trial
        return None
    trial_id = best.user_attrs.get(TAG_TRIAL)
    return str(trial_id) if trial_id is not None else None


def pareto_front(
    storage: optuna.storages.BaseStorage, study_name: str, metrics: list[str]
) -> list[dict[str, Any]]:
    """A multi-objective study's Pareto-optimal (feasible) trials: number, params, objective
    values, and for an earlier sweep's trial (`search.warm_start`) its origin."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    return [
        {"number": trial.number, "params": trial.params,
         "values": dict(zip(metrics, trial.values or [], strict=False)),
         **({"origin": trial.user_attrs[TAG_ORIGIN]} if TAG_ORIGIN in trial.user_attrs else {})}
        for trial in sorted(study.best_trials, key=lambda trial: trial.number)
    ]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
