"""What a resumed sweep takes over from its dead driver: ASHA's rungs, Optuna's study and the
checkpoints Tune restores trials from (real schedulers, studies and checkpoint files)."""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from support import home_at
from trialforge.catalog import Catalog, SweepRecord, utcnow
from trialforge.search.resume import (
    SweepStillRunningError,
    restore_missing_checkpoints,
    resume_sweep,
)
from trialforge.search.schedulers import SchedulerMemory
from trialforge.search.searcher import OptunaSearcher
from trialforge.train.contract import CHECKPOINT_FILE, load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class _Trial:  # what ASHA reads of a trial
    trial_id: str


def _asha() -> ASHAScheduler:
    return ASHAScheduler(time_attr="epoch", metric="acc", mode="max", max_t=8,
                         grace_period=1, reduction_factor=2)


def _result(scheduler: ASHAScheduler, trial: _Trial, acc: float) -> str:
    scheduler.on_trial_add(None, trial)  # type: ignore[arg-type]
    return scheduler.on_trial_result(None, trial, {"epoch": 1, "acc": acc})  # type: ignore[arg-type]


def test_ashas_rungs_survive_a_restore() -> None:
    before = _asha()
    for name, acc in [("a", 0.9), ("b", 0.8), ("c", 0.85)]:
        _result(before, _Trial(name), acc)
    state = SchedulerMemory(before).get_state()
    assert state is not None

    restored = _asha()
    SchedulerMemory(restored).set_state(json.loads(json.dumps(state)))  # plain data
    assert _result(restored, _Trial("weak"), 0.1) == TrialScheduler.STOP
    assert _result(_asha(), _Trial("weak"), 0.1) == TrialScheduler.CONTINUE, \
        "without its rungs, a new ASHA lets the weak trial go on"
    assert SchedulerMemory(tune.schedulers.FIFOScheduler()).get_state() is None


def test_a_restored_searcher_fails_the_trials_tune_never_saved(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"

    def searcher() -> OptunaSearcher:
        return OptunaSearcher(space={"x": FloatDistribution(0.0, 1.0)},
                              metric="acc", mode="max", study_name="s",
                              storage=optuna.storages.RDBStorage(url))

    first = searcher()
    first.suggest("a")
    first.suggest("b")
    first.on_trial_complete("a", {"acc": 0.5, "epoch": 1, "trial_state": "completed"})
    first.save(str(tmp_path / "searcher.pkl"))
    # Suggested after Tune's last save, then the driver died: Tune will never resume it.
    first.suggest("zombie")

    again = searcher()
    again.restore(str(tmp_path / "searcher.pkl"))
    study = optuna.load_study(study_name="s", storage=url)
    states = {t.user_attrs["trialforge.trial_id"]: t.state for t in study.trials}
    assert states == {"a": TrialState.COMPLETE, "b": TrialState.RUNNING,
                      "zombie": TrialState.FAIL}
    # The resumed trial still reports to Optuna.
    again.on_trial_complete("b", {"acc": 0.7, "epoch": 1, "trial_state": "completed"})
    assert optuna.load_study(study_name="s", storage=url).best_value == 0.7


def _checkpoint(folder: Path, epoch: int) -> None:
    folder.mkdir(parents=True)
    save_checkpoint({"model": {}, "epoch": epoch}, folder / CHECKPOINT_FILE)


def test_a_checkpoint_tune_deleted_after_its_last_save_is_restored(tmp_path: Path) -> None:
    trials = [("running", "RUNNING", "checkpoint_000001"),
              ("ended", "TERMINATED", "checkpoint_000000")]
    state = {"trial_data": [
        [json.dumps({"trial_id": name, "status": status, "relative_logdir": f"trial_{name}"}),
         json.dumps({"last_result": {"checkpoint_dir_name": checkpoint}})]
        for name, status, checkpoint in trials
    ]}
    (tmp_path / "experiment_state-2026.json").write_text(json.dumps(state))
    _checkpoint(tmp_path / "trial_running" / "checkpoint_000002", epoch=3)
    half_written = tmp_path / "trial_running" / "checkpoint_000003"
    half_written.mkdir()
    (half_written / CHECKPOINT_FILE).write_bytes(b"trunc")
    (tmp_path / "trial_ended").mkdir()

    assert restore_missing_checkpoints(tmp_path) == 1
    restored = load_checkpoint(tmp_path / "trial_running" / "checkpoint_000001" / CHECKPOINT_FILE)
    assert restored["epoch"] == 3, "the newest checkpoint that loads"
    assert not (tmp_path / "trial_ended" / "checkpoint_000000").exists(), "ended: left alone"
    assert restore_missing_checkpoints(tmp_path) == 0, "nothing left to repair"


def test_a_sweep_whose_driver_is_alive_is_not_resumed(tmp_path: Path) -> None:
    home = home_at(tmp_path).create()
    catalog = Catalog(home.db_url)
    driver = subprocess.Popen(["sleep", "60"])
    try:
        process = psutil.Process(driver.pid)
        catalog.add_sweep(SweepRecord(
            id="alive123", name="n", spec_yaml="name: n\n", family="mlp", created_at=utcnow(),
            study_name="trialforge-alive123", metric="val_accuracy", mode="max",
            driver=f"{socket.gethostname()}:{driver.pid}:{int(process.create_time())}"))
        with pytest.raises(SweepStillRunningError, match=f"driver pid {driver.pid}"):
            resume_sweep("alive", home)
    finally:
        driver.kill()
        driver.wait()
    assert catalog.get_sweep("alive123").state == "running", "left as it was"
    catalog.close()
