"""Watches a sweep's trials from the driver (a Tune callback): it sees every report, and
what no trial sees of itself (being stopped, dying with its worker). It scores each trial by
its best epoch (`train.contract`) and hands each start, epoch and end to the `SweepRecorder`,
each end to the catalog and `FailFast`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from trialforge.search.constraints import Constraints
from trialforge.search.fail_fast import FailFast
from trialforge.search.progress import SAVED_COUNTS, BestTrial, Progress
from trialforge.search.stop_rules import SweepStop
from trialforge.tracking import SweepRecorder
from trialforge.tracking.tags import TAG_EXPLOIT, TAG_FEASIBLE, TAG_NODE
from trialforge.train.contract import BestEpoch, Report, TrialState, read_history, trial_outcome
from trialforge.train.failures import DIVERGED, error_summary, failure_kind_of_error, failure_reason

logger = logging.getLogger(__name__)

# Keys of a result that are not the trial's metrics: Tune's own, the contract's, Train's.
_NOT_METRICS = {*AUTO_RESULT_KEYS, *(key.value for key in Report), "trial_id", "done",
                "checkpoint_path"}
# Describes a trial to MLflow from its sampled config: its params, and tags (lineage).
Describe = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]


@dataclass
class TrialLedger:
    """What the driver knows of a trial (and the catalog records): its knobs, best epoch
    (its score), last node and how it ended."""

    trial_id: str
    name: str
    config: dict[str, Any]  # the knobs it started with (its MLflow run's params)
    best: BestEpoch
    node: str = ""
    epochs: int = 0
    state: str = TrialState.RUNNING.value
    failure: str | None = None  # diverged, oom, worker_lost or code_error (train.failures)
    reason: str | None = None
    # The knobs its best epoch trained with: under pbt/pb2 a trial's knobs change.
    best_config: dict[str, Any] | None = None
    # pbt/pb2: each exploit (the trial copied, at which epoch, the knobs after it); the
    # last one's tag waits for the trial's next epoch, its run's next write.
    exploits: list[dict[str, Any]] = field(default_factory=list)
    unsent: dict[str, str] = field(default_factory=dict)
    infeasible: str | None = None  # which `search.constraints` its best epoch broke


class TrialMonitor(Callback):
    """Records each trial from Tune's events (see the module's docstring); `on_trial_end`
    is given an ended trial's ledger and its run id (None while MLflow has not answered)."""

    def __init__(self, progress: Progress, recorder: SweepRecorder | None = None,
                 describe: Describe | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_trial_end: Callable[[TrialLedger, str | None], None] | None = None,
                 fail_fast: FailFast | None = None,
                 sweep_stop: SweepStop | None = None,
                 constraints: Constraints | None = None) -> None:
        self.progress = progress
        self.recorder = recorder
        self.describe = describe or (lambda config: (dict(config), {}))
        self.on_progress = on_progress
        self.on_trial_end = on_trial_end
        self.fail_fast = fail_fast or FailFast()
        self.sweep_stop = sweep_stop  # `search.stop`, told each trial's end
        self.constraints = constraints  # `search.constraints`, judging each trial's end
        self.trials: dict[str, TrialLedger] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks with its experiment state; the live writers stay behind.
        return {**self.__dict__, "recorder": None, "describe": None, "on_progress": None,
                "on_trial_end": None, "sweep_stop": None}

    def get_state(self) -> dict[str, Any]:
        # Saved in Tune's experiment checkpoint: a resumed sweep counts (and scores) the
        # trials that ended before its driver died.
        return {"progress": {key: getattr(self.progress, key) for key in SAVED_COUNTS},
                "trials": dict(self.trials), "first_errors": list(self.fail_fast.first_errors)}

    def set_state(self, state: dict[str, Any]) -> None:
        for key, value in state["progress"].items():
            setattr(self.progress, key, value)
        self.trials.update(state["trials"])
        self.fail_fast.first_errors = list(state.get("first_errors", []))

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        ledger = self._ledger(trial)
        if self.recorder is not None:  # a new trial's run; or, restored or retried, its own
            # The knobs it started with: a pbt/pb2 exploit restarts it with others, which
            # its run's tags record (MLflow's params cannot change).
            params, tags = self.describe(ledger.config)
            self.recorder.opened(trial.trial_id, ledger.name, params, tags)
        self._emit(trials)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        if result.get(Report.STATE.value) == TrialState.FAILED.value:
            return  # not an epoch: the failure a trial reported (see on_trial_complete)
        ledger = self.trials[trial.trial_id]
        epoch = int(result.get(Report.EPOCH.value, 0))
        if result.get(Report.REPEATED.value) and epoch <= ledger.epochs:
            return  # the last report again, which had arrived
        location = checkpoint_location(trial, result)
        if location is None and 0 < epoch <= ledger.epochs:
            # An epoch it had reported, sent again without its checkpoint (pbt's saves): it
            # must not take the best's place. An exploit's tags wait for the next epoch.
            return
        jumped, tags = bool(ledger.unsent), {**ledger.unsent}
        ledger.unsent.clear()
        if epoch > ledger.epochs + 1 and location is not None and not jumped:
            # Resumed from a checkpoint newer than the last report a dead driver saw: the
            # epochs between are in the checkpoint's history.
            for past in read_history(location):
                if ledger.epochs < past[Report.EPOCH.value] < epoch:
                    self._epoch(trial.trial_id, ledger, past, None)
        node = str(result.get(Report.NODE.value) or ledger.node)
        if node != ledger.node:
            tags[TAG_NODE] = node
        self._epoch(trial.trial_id, ledger, result, location, tags or None)
        ledger.node = node
        self.progress.offer(result.get(self.progress.metric), ledger.name, trial.config,
                            epoch, trial.trial_id)
        self._emit(trials)

    def _epoch(self, trial_id: str, ledger: TrialLedger, result: dict[str, Any],
               location: str | None, tags: dict[str, str] | None = None) -> None:
        epoch = int(result.get(Report.EPOCH.value, 0))
        ledger.epochs = max(ledger.epochs, epoch)
        if ledger.best.offer(result, location):
            ledger.best_config = dict(result.get("config") or ledger.config)
        self.progress.epochs += 1
        if self.recorder is not None:
            self.recorder.epoch(trial_id, epoch, trial_metrics(result), tags)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        last = trial.last_result or {}
        state = trial_outcome(last)
        if state == TrialState.FAILED:
            self._end(trial, trials, state, last.get(Report.FAILURE.value),
                      last.get(Report.ERROR.value))
        elif state == TrialState.DIVERGED:
            self._end(trial, trials, state, DIVERGED, "the training loss became NaN or infinite "
                      f"at epoch {last.get(Report.EPOCH.value, 0)}")
        else:
            self._end(trial, trials, state, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        summary, text = error_summary(trial.error_file, trial.get_error())
        self._end(trial, trials, TrialState.FAILED, failure_kind_of_error(text), summary)

    def exploited(self, trial_id: str, donor: str, epoch: int, config: dict[str, Any]) -> None:
        """pbt/pb2: `trial_id` goes on from `donor`'s checkpoint of `epoch`, with `config`.
        Its MLflow run gets a tag `trialforge.exploit.<n>` at its next epoch."""
        ledger = self.trials[trial_id]
        ledger.exploits.append({"from_trial": donor, "from_epoch": epoch, "config": config})
        ledger.unsent[f"{TAG_EXPLOIT}.{len(ledger.exploits)}"] = json.dumps(
            ledger.exploits[-1], default=str)

    def interrupt_open_trials(self, reason: str) -> None:
        """End every trial still running as interrupted (the sweep ends without them)."""
        for ledger in self.trials.values():
            if ledger.state == TrialState.RUNNING.value:
                self._record_end(ledger, TrialState.INTERRUPTED, None, reason)

    def _end(self, trial: Any, trials: list[Any], state: TrialState, failure: str | None,
             reason: str | None = None) -> None:
        ledger = self._ledger(trial)
        if ledger.state != TrialState.RUNNING.value:
            return  # told twice (a restored trial that had ended)
        setattr(self.progress, state.value, getattr(self.progress, state.value) + 1)
        if state == TrialState.FAILED:
            logger.warning("trial %s failed (%s): %s", trial, failure, reason)
        self.fail_fast.offer(failure, reason)
        if self.sweep_stop is not None:
            self.sweep_stop.trial_ended(ledger.best.value)
        self._record_end(ledger, state, failure, reason)
        self._emit(trials, ended=trial.trial_id)

    def _ledger(self, trial: Any) -> TrialLedger:
        return self.trials.setdefault(trial.trial_id, TrialLedger(
            trial.trial_id, str(trial), dict(trial.config),
            BestEpoch(self.progress.metric, self.progress.mode)))

    def _record_end(self, ledger: TrialLedger, state: TrialState, failure: str | None,
                    reason: str | None) -> None:
        ledger.state, ledger.failure, ledger.reason = state.value, failure, reason
        tags = {}
        if self.constraints is not None and ledger.best.value is not None:
            ledger.infeasible = self.constraints.broken(ledger.best.metrics)
            tags[TAG_FEASIBLE] = f"false: {ledger.infeasible}" if ledger.infeasible else "true"
        if self.recorder is not None:
            self.recorder.ended(ledger.trial_id, state.value, failure_reason(failure, reason),
                                failure, ledger.best.epoch, ledger.best.value,
                                ledger.best.checkpoint, tags)
        if self.on_trial_end is not None:
            self.on_trial_end(ledger, self._run_id(ledger.trial_id))

    def best_trial(self, trial_id: str) -> BestTrial | None:
        """The score of `trial_id` as a `BestTrial` (None if it has none)."""
        ledger = self.trials.get(trial_id)
        if ledger is None or ledger.best.value is None:
            return None
        return BestTrial(ledger.best.value, ledger.name, self._run_id(trial_id),
                         dict(ledger.best_config or ledger.config), ledger.best.epoch, trial_id)

    def _run_id(self, trial_id: str) -> str | None:
        return self.recorder.run_ids().get(trial_id) if self.recorder is not None else None

    def _emit(self, trials: list[Any], ended: str | None = None) -> None:
        # Counted from Tune's own trial states: reused actors start trials without a start
        # event of their own.
        self.progress.running = sum(1 for t in trials
                                    if t.status == "RUNNING" and t.trial_id != ended)
        if self.on_progress is not None:
            self.on_progress(self.progress)


def trial_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The metrics a trial reported, without Tune's bookkeeping (nor `epoch`, the step)."""
    return {key: float(value) for key, value in result.items()
            if key not in _NOT_METRICS and isinstance(value, (int, float))
            and not isinstance(value, bool)}


def checkpoint_location(trial: Any, result: dict[str, Any]) -> str | None:
    """Where the checkpoint of `result` is kept: a path, or a URI on remote storage."""
    storage = trial.storage
    if result.get("checkpoint_path"):  # a TorchTrainer's, in Train's storage
        path = str(result["checkpoint_path"])
    elif result.get("checkpoint_dir_name"):
        path = f"{storage.trial_fs_path}/{result['checkpoint_dir_name']}"
    else:
        return None
    scheme = storage.storage_filesystem.type_name
    return path if scheme == "local" else f"{scheme}://{path}"

