"""The driver's writer of a sweep's MLflow runs, against a real MLflow store (sqlite)."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from trialforge.figures import FIGURES_FILE, confusion_figure
from trialforge.tracking import (
    SweepRecorder,
    TrackingTarget,
    TrackingUnavailableError,
    open_sweep_run,
)
from trialforge.tracking.journal import Journal
from trialforge.train.contract import CHECKPOINT_FILE, save_checkpoint


def _target(tmp_path: Path) -> TrackingTarget:
    return open_sweep_run(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", "s1", "name: x\n",
                          tmp_path / "artifacts")


def _checkpoint(folder: Path, epoch: int) -> str:
    folder.mkdir(parents=True)
    save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": epoch}, folder / CHECKPOINT_FILE)
    figures = {"confusion_matrix": confusion_figure([[2, 0], [1, 1]], ["a", "b"])}
    (folder / FIGURES_FILE).write_text(json.dumps(figures))  # drawn by the driver
    return str(folder)


def test_a_trial_run_holds_its_params_epochs_score_and_best_checkpoint(tmp_path: Path) -> None:
    target = _target(tmp_path)
    recorder = SweepRecorder(target, tmp_path / "journal.jsonl", "val_accuracy")
    recorder.opened("t1", "trial_t1", {"model.dropout": 0.25}, {"trialforge.backbone": "x"})
    for epoch, value in enumerate([0.5, 0.8, 0.7], start=1):
        recorder.epoch("t1", epoch, {"val_accuracy": value, "epoch_seconds": 0.1},
                       {"trialforge.node_id": "n1"} if epoch == 1 else None)
    recorder.ended("t1", "completed", None, None, 2, 0.8, _checkpoint(tmp_path / "ck", 2))
    recorder.flush()
    run_id = recorder.run_ids().get("t1")
    assert run_id is not None
    recorder.close()
    assert not (tmp_path / "journal.jsonl").exists(), "everything arrived"

    client = MlflowClient(target.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"model.dropout": "0.25"}
    assert run.data.tags["mlflow.parentRunId"] == target.parent_run_id
    tags = run.data.tags
    assert (tags["trialforge.state"], tags["trialforge.best_epoch"]) == ("completed", "2")
    assert tags["trialforge.node_id"] == "n1" and tags["trialforge.backbone"] == "x"
    assert run.data.metrics["best_val_accuracy"] == 0.8, "the score: its best epoch"
    steps = [(m.step, m.value) for m in client.get_metric_history(run_id, "val_accuracy")]
    assert sorted(steps) == [(1, 0.5), (2, 0.8), (3, 0.7)]
    assert [a.path for a in client.list_artifacts(run_id, "best_checkpoint")] == \
        ["best_checkpoint/checkpoint.pt"]
    assert "confusion_matrix.png" in [a.path for a in client.list_artifacts(run_id)]


def test_a_new_driver_sends_what_the_journal_owes_and_logs_no_epoch_twice(
    tmp_path: Path,
) -> None:
    target = _target(tmp_path)
    first = SweepRecorder(target, tmp_path / "journal.jsonl", "val_accuracy")
    first.opened("t1", "trial_t1", {}, {})
    first.epoch("t1", 1, {"val_accuracy": 0.5, "epoch_seconds": 0.1})
    first.flush()
    # The driver dies with epoch 2 and the end journaled but never sent (MLflow was away).
    owed = Journal(tmp_path / "journal.jsonl")
    owed.append({"op": "epoch", "trial": "t1", "epoch": 2, "at": 2,
                 "metrics": {"val_accuracy": 0.6, "epoch_seconds": 0.1}})
    owed.close()
    resumed = SweepRecorder(target, tmp_path / "journal.jsonl", "val_accuracy", resumed=True)
    resumed.opened("t1", "trial_t1", {}, {})  # the trial goes on in its run
    for epoch in (2, 3):  # it trains epoch 2 again, from the epoch-1 checkpoint
        resumed.epoch("t1", epoch, {"val_accuracy": 0.6, "epoch_seconds": 0.1})
    resumed.ended("t1", "completed", None, None, 2, 0.6, None)
    resumed.flush()
    resumed.close()
    client = MlflowClient(target.tracking_uri)
    runs = client.search_runs([target.experiment_id], "tags.`trialforge.kind` = 'trial'")
    assert len(runs) == 1, "found again by its trial tag"
    history = client.get_metric_history(runs[0].info.run_id, "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3], "each epoch once"
    assert runs[0].info.status == "FINISHED"


def test_the_sweeps_end_closes_orphaned_runs_and_the_parent_run(tmp_path: Path) -> None:
    target = _target(tmp_path)
    first = SweepRecorder(target, tmp_path / "journal.jsonl", "val_accuracy")
    first.opened("t1", "trial_t1", {}, {})  # its driver dies with it running
    first.finished("failed", {}, {}, reason="the driver was killed")
    first.flush()
    first.close()
    resumed = SweepRecorder(target, tmp_path / "journal.jsonl", "val_accuracy", resumed=True)
    resumed.opened("t2", "trial_t2", {}, {})
    resumed.ended("t2", "completed", None, None, 1, 0.8, None)
    resumed.end_orphans("the sweep ended with it running")
    resumed.finished("finished", {"best_val_accuracy": 0.8, "seconds": math.nan},
                     {"model.dropout": 0.25}, pareto_front=[{"trial": "t2"}])
    resumed.flush()
    resumed.close()
    assert set(resumed.run_ids()) == {"t1", "t2"}, "the earlier driver's runs are learnt"
    client = MlflowClient(target.tracking_uri)
    orphan = client.get_run(resumed.run_ids()["t1"])
    assert orphan.info.status == "KILLED"
    assert orphan.data.tags["trialforge.state"] == "interrupted"
    assert client.get_run(resumed.run_ids()["t2"]).info.status == "FINISHED"
    parent = client.get_run(target.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert "trialforge.reason" not in parent.data.tags, "the earlier end's reason is gone"
    assert parent.data.metrics == {"best_val_accuracy": 0.8}, "NaN is left out"
    assert parent.data.params == {"best.model.dropout": "0.25"}
    front = client.download_artifacts(target.parent_run_id, "pareto_front.json", str(tmp_path))
    assert json.loads(Path(front).read_text()) == [{"trial": "t2"}]


def test_an_outage_longer_than_the_patience_keeps_the_writes_and_fails_at_once(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    target = TrackingTarget(f"http://127.0.0.1:{closed}", "1", "p1", "s1")
    recorder = SweepRecorder(target, tmp_path / "journal.jsonl", "val_accuracy", retry_s=0.05)
    recorder.opened("t1", "trial_t1", {}, {})
    with pytest.raises(TrackingUnavailableError, match=r"1 writes of the sweep's runs wait in"):
        recorder.flush(patience=0.3)
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match="TRIALFORGE_TRACKING_PATIENCE_S"):
        recorder.flush(patience=0.3)
    assert time.monotonic() - started < 0.2, "the outage already lasted too long"
    recorder.close()
    assert [entry["op"] for _, entry in Journal(tmp_path / "journal.jsonl").pending()] == \
        ["open"], "kept for `sweep resume`"
