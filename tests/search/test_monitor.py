"""How the driver names the end of each trial, and the progress line (pure logic)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from trialforge.search.champion import best_scored
from trialforge.search.fail_fast import FailFast
from trialforge.search.monitor import TrialLedger, TrialMonitor, trial_metrics
from trialforge.search.progress import Progress
from trialforge.train.contract import BestEpoch, improves, trial_outcome


def test_trial_outcomes() -> None:
    assert trial_outcome({"epoch": 12, "trial_state": "completed"}) == "completed"
    assert trial_outcome({"epoch": 4, "trial_state": "running"}) == "stopped_early"
    assert trial_outcome({"epoch": 2, "trial_state": "diverged"}) == "diverged"
    assert trial_outcome({"epoch": 0, "trial_state": "failed"}) == "failed"
    assert trial_outcome(None) == "stopped_early"


def test_progress_keeps_the_best_finite_value() -> None:
    progress = Progress(total=4, metric="val_loss", mode="min", max_epochs=3)
    for value, trial in [(0.9, "a"), (math.nan, "b"), (0.4, "c"), (0.5, "d"), ("x", "e")]:
        progress.offer(value, trial)
    assert progress.best is not None
    assert (progress.best.value, progress.best.trial) == (0.4, "c")
    progress.running = 1
    progress.stopped_early = 1
    progress.completed = 2
    line = progress.line()
    assert "trials 3/4 done" in line and "1 running" in line and "1 stopped early" in line
    assert "best val_loss 0.4000 (c)" in line


class _Trial:  # what the monitor reads of a Tune trial
    def __init__(self, trial_id: str, last_result: dict[str, object]) -> None:
        self.trial_id, self.last_result, self.config = trial_id, last_result, {}

    def __str__(self) -> str:
        return f"trial_{self.trial_id}"


def _failed(trial_id: str, error: str, kind: str = "code_error") -> _Trial:
    return _Trial(trial_id, {"trial_state": "failed", "trial_failure": kind,
                             "trial_error": error, "epoch": 0})


def _monitor(ends: list[TrialLedger]) -> TrialMonitor:
    progress = Progress(total=8, metric="val_accuracy", mode="max", max_epochs=3)
    return TrialMonitor(progress, None, None, on_trial_end=lambda trial, _: ends.append(trial),
                        fail_fast=FailFast(3))


def test_the_first_trials_failing_alike_stop_the_sweep() -> None:
    ends: list[TrialLedger] = []
    monitor = _monitor(ends)
    stopper = monitor.fail_fast
    for trial_id in "abc":
        assert not stopper.stop_all()
        monitor.on_trial_complete(0, [], _failed(trial_id, "ValueError: bad"))
    assert stopper.stop_all() and stopper.error == "ValueError: bad"
    assert [(end.state, end.failure) for end in ends] == [("failed", "code_error")] * 3
    assert monitor.progress.failed == 3


@pytest.mark.parametrize("third", [
    _failed("c", "ValueError: other"),  # another error
    _failed("c", "CUDA out of memory", kind="oom"),  # not a code error
    _Trial("c", {"trial_state": "completed", "epoch": 3, "val_accuracy": 0.9}),
])
def test_a_sweep_goes_on_unless_its_first_trials_fail_alike(third: _Trial) -> None:
    monitor = _monitor([])
    monitor.on_trial_complete(0, [], _failed("a", "ValueError: bad"))
    monitor.on_trial_complete(0, [], _failed("b", "ValueError: bad"))
    monitor.on_trial_complete(0, [], third)
    monitor.on_trial_complete(0, [], _failed("d", "ValueError: bad"))  # too late to count
    assert monitor.fail_fast.error is None and not monitor.fail_fast.stop_all()


class _Storage:  # what checkpoint_location reads of a trial's storage
    trial_fs_path = "/ray/sweep/trial_a"

    class storage_filesystem:
        type_name = "local"


def _epoch(trial: _Trial, monitor: TrialMonitor, epoch: int, value: float) -> None:
    result = {"epoch": epoch, "val_accuracy": value, "trial_state": "running",
              "checkpoint_dir_name": f"checkpoint_{epoch:06d}", "time_this_iter_s": 0.1}
    monitor.on_trial_result(0, [], trial, result)


def test_a_trial_is_scored_by_its_best_epoch_and_the_champion_ran_its_budget() -> None:
    ends: list[TrialLedger] = []
    monitor = _monitor(ends)
    trials = {name: _Trial(name, {}) for name in "abc"}
    for trial in trials.values():
        trial.storage = _Storage()  # type: ignore[attr-defined]
        monitor.on_trial_start(0, [], trial)
    for epoch, value in enumerate([0.90, 0.95, 0.93], start=1):  # best at epoch 2
        _epoch(trials["a"], monitor, epoch, value)
    _epoch(trials["b"], monitor, 1, 0.99)  # the best epoch of all, then stopped
    for epoch, value in enumerate([0.91, 0.92, 0.94], start=1):
        _epoch(trials["c"], monitor, epoch, value)
    trials["a"].last_result = {"trial_state": "completed", "epoch": 3}
    trials["b"].last_result = {"trial_state": "running", "epoch": 1}
    trials["c"].last_result = {"trial_state": "completed", "epoch": 3}
    for trial in trials.values():
        monitor.on_trial_complete(0, [], trial)
    scores = {end.trial_id: (end.state, end.best.value, end.epochs) for end in ends}
    assert scores == {"a": ("completed", 0.95, 3), "b": ("stopped_early", 0.99, 1),
                      "c": ("completed", 0.94, 3)}
    champion = best_scored(monitor)
    assert champion is not None
    assert (champion.trial_id, champion.value, champion.epoch) == ("a", 0.95, 2), \
        "the best-scored trial that ran its whole budget, at its best epoch"
    assert monitor.trials["a"].best.checkpoint == "/ray/sweep/trial_a/checkpoint_000002"
    assert monitor.progress.best is not None and monitor.progress.best.value == 0.99


def test_the_scoring_rule() -> None:
    assert improves(0.9, None, "max") and improves(0.9, 0.8, "max") and improves(0.1, 0.2, "min")
    assert not improves(0.8, 0.8, "max"), "a tie is no improvement"
    assert not improves(math.nan, None, "max") and not improves(True, None, "max")
    best = BestEpoch("val_loss", "min")
    for epoch, value in [(1, 0.5), (2, math.nan), (3, 0.3), (4, 0.3), (5, 0.4)]:
        best.offer({"epoch": epoch, "val_loss": value})
    assert (best.epoch, best.value) == (4, 0.3), "the last epoch that reached the best"


def test_trial_metrics_leave_out_tunes_bookkeeping() -> None:
    result = {"epoch": 2, "val_accuracy": 0.9, "params": 100.0, "trial_state": "running",
              "trial_node": "n1", "time_this_iter_s": 0.2, "training_iteration": 2,
              "pid": 7, "done": False, "trial_id": "a", "checkpoint_dir_name": "c"}
    assert trial_metrics(result) == {"val_accuracy": 0.9, "params": 100.0}


class _Recorder:  # what the monitor hands the driver's MLflow writer (pure logic)
    def __init__(self) -> None:
        self.epochs: list[int] = []

    def opened(self, *args: object) -> None:
        pass

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float],
              tags: dict[str, str] | None = None) -> None:
        self.epochs.append(epoch)


def test_epochs_a_dead_driver_never_saw_come_from_the_checkpoints_history(
    tmp_path: Path,
) -> None:
    recorder = _Recorder()
    monitor = TrialMonitor(Progress(total=1, metric="val_accuracy", mode="max", max_epochs=5),
                           recorder)  # type: ignore[arg-type]
    trial = _Trial("a", {})
    trial.storage = _Storage()  # type: ignore[attr-defined]
    trial.storage.trial_fs_path = str(tmp_path)  # type: ignore[attr-defined]
    monitor.on_trial_start(0, [], trial)
    _epoch(trial, monitor, 1, 0.5)
    # The driver died after epoch 1; the trial resumed from its epoch-3 checkpoint.
    (tmp_path / "checkpoint_000004").mkdir()
    (tmp_path / "checkpoint_000004" / "history.json").write_text(json.dumps(
        [{"epoch": e, "val_accuracy": 0.5 + e / 10} for e in range(1, 5)]))
    _epoch(trial, monitor, 4, 0.9)
    assert recorder.epochs == [1, 2, 3, 4]
    assert monitor.trials["a"].best.value == 0.9 and monitor.progress.epochs == 4


def test_a_report_sent_again_is_kept_once(tmp_path: Path) -> None:
    recorder = _Recorder()
    monitor = TrialMonitor(Progress(total=1, metric="val_accuracy", mode="max", max_epochs=2),
                           recorder)  # type: ignore[arg-type]
    trial = _Trial("a", {})
    trial.storage = _Storage()  # type: ignore[attr-defined]
    monitor.on_trial_start(0, [], trial)
    _epoch(trial, monitor, 1, 0.5)
    last = {"epoch": 1, "val_accuracy": 0.5, "trial_state": "running", "trial_repeated": True}
    monitor.on_trial_result(0, [], trial, last)  # it had arrived
    monitor.on_trial_result(0, [], trial, {**last, "epoch": 2, "trial_state": "completed"})
    assert recorder.epochs == [1, 2], "one that had not arrived is recorded"
    assert monitor.progress.epochs == 2


class _TaggingRecorder(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[int, dict[str, str]] = {}

    def epoch(self, trial_id: str, epoch: int, metrics: dict[str, float],
              tags: dict[str, str] | None = None) -> None:
        super().epoch(trial_id, epoch, metrics, tags)
        self.tags[epoch] = dict(tags or {})

    def run_ids(self) -> dict[str, str]:
        return {}


def test_an_exploit_is_tagged_and_the_best_epoch_keeps_its_own_knobs() -> None:
    recorder = _TaggingRecorder()
    monitor = TrialMonitor(Progress(total=2, metric="val_accuracy", mode="max", max_epochs=4),
                           recorder)  # type: ignore[arg-type]
    trial = _Trial("a", {})
    trial.storage = _Storage()  # type: ignore[attr-defined]
    trial.config = {"model.width": 8, "train.lr": 0.1}
    monitor.on_trial_start(0, [], trial)
    _epoch(trial, monitor, 1, 0.5)
    # pbt: trial a copies b's epoch-2 checkpoint (b's width) and goes on with new knobs.
    donor = {"model.width": 32, "train.lr": 0.01}
    monitor.exploited("a", "b", 2, donor)
    monitor.on_trial_result(0, [], trial, {
        "epoch": 3, "val_accuracy": 0.9, "trial_state": "running", "config": donor,
        "checkpoint_dir_name": "checkpoint_000003"})
    assert json.loads(recorder.tags[3]["trialforge.exploit.1"]) == {
        "from_trial": "b", "from_epoch": 2, "config": donor}
    # Tune sends the epoch again without its checkpoint, even right after another exploit:
    # the best keeps its checkpoint, and the exploit's tag waits for the next epoch.
    monitor.exploited("a", "c", 3, donor)
    monitor.on_trial_result(0, [], trial, {"epoch": 3, "val_accuracy": 0.9,
                                           "trial_state": "running", "config": donor})
    ledger = monitor.trials["a"]
    assert ledger.best.checkpoint == "/ray/sweep/trial_a/checkpoint_000003"
    assert recorder.epochs == [1, 3]
    monitor.on_trial_result(0, [], trial, {
        "epoch": 4, "val_accuracy": 0.8, "trial_state": "running", "config": donor,
        "checkpoint_dir_name": "checkpoint_000005"})
    assert "trialforge.exploit.2" in recorder.tags[4]
    best = monitor.best_trial("a")
    assert best is not None and best.params == donor, "registered with its best epoch's knobs"
    assert ledger.config == {"model.width": 8, "train.lr": 0.1}, "its run's params stay"
