"""Chaos: real processes killed mid-sweep, and what trialforge keeps of their work."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sweep_records import assert_finished_sweep, only_sweep, stores, trial_runs

from support import REPO, STORE_VARIABLES, TRIALFORGE, run_cli

pytestmark = pytest.mark.e2e

TRIALS, EPOCHS = 4, 6


def _start_cli(
    *args: str, home: Path, ray_address: str, cwd: Path = REPO
) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    environment.update(TRIALFORGE_HOME=str(home), RAY_ADDRESS=ray_address)
    return subprocess.Popen([str(TRIALFORGE), *args], cwd=cwd, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _in_flight_and_saved(home: Path, ended: int) -> bool:
    """Whether `ended` trials have ended, and a running one has a checkpoint and is in
    Tune's saved experiment state (a trial Tune never saved cannot be resumed: it would be
    recorded as interrupted, and another sampled in its place)."""
    states = _trial_states(home)
    running = [trial for trial, state in states.items() if state == "running"]
    saved = "".join(path.read_text() for path in
                    (home / "ray_results").glob("*/experiment_state-*.json"))
    return len(states) - len(running) >= ended and any(
        trial in saved
        and next((home / "ray_results").glob(f"*/trial_{trial}/checkpoint_*"), None)
        for trial in running
    )


def _trial_states(home: Path) -> dict[str, str]:
    """Trial id -> the state the driver last wrote for its run ("running" until it ends),
    read from its journal: MLflow receives the same writes up to a second later."""
    states: dict[str, str] = {}
    for path in home.glob("journals/*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line).get("entry", {})
            except json.JSONDecodeError:
                continue  # the line being written
            if entry.get("op") == "open":
                states.setdefault(entry["trial"], "running")
            elif entry.get("op") == "end":
                states[entry["trial"]] = entry["state"]
    return states


def test_a_sweep_whose_driver_is_killed_is_resumed_with_nothing_lost(
    home: Path, ray_address: str
) -> None:
    # One trial at a time: the driver dies in the middle of the third, after two have ended
    # and ASHA has recorded them.
    sweep = _start_cli(
        "sweep", "run", "jobs/cnn_digits.yaml", f"search.trials={TRIALS}",
        f"train.epochs={EPOCHS}", "search.concurrency=1",
        "search.scheduler={type: asha, grace_period: 1, reduction_factor: 2}",
        home=home, ray_address=ray_address,
    )
    try:
        deadline = time.monotonic() + 240
        while not _in_flight_and_saved(home, ended=2):
            assert sweep.poll() is None, f"the sweep ended before the kill: {sweep.stderr}"
            assert time.monotonic() < deadline, "no third trial"
            time.sleep(0.05)
        sweep.send_signal(signal.SIGKILL)  # no clean-up at all, as on power loss
        sweep.wait(30)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    at_kill = _trial_states(home)
    in_flight = {trial for trial, state in at_kill.items() if state == "running"}
    ended_before = set(at_kill) - in_flight
    assert in_flight and ended_before, at_kill
    killed = only_sweep(home)
    assert killed.state == "running", "a killed driver cannot record its end"
    time.sleep(2)  # Ray ends the dead driver's trial actors

    resumed = run_cli("sweep", "resume", killed.id, home=home, ray_address=ray_address)
    assert resumed.returncode == 0, resumed.stderr
    assert f"sweep {killed.id} finished" in resumed.stdout

    # Every trial once in MLflow and Optuna, none RUNNING, each epoch logged once, the
    # registered model the best (checked by assert_finished_sweep).
    record = assert_finished_sweep(home, trials=TRIALS, epochs=EPOCHS)
    _, children = trial_runs(home, record)
    assert len({run.data.tags["trialforge.trial_id"] for run in children}) == TRIALS
    epochs = sum(len(_history(home, run.info.run_id)) for run in children)
    assert epochs < TRIALS * EPOCHS, "ASHA stopped weak trials early"
    assert record.trials_completed + record.trials_stopped == TRIALS
    # ASHA's first rung (milestone: epoch 1) still holds the trials that ended before the
    # driver died, next to those that ran after the resume.
    first_rung = _asha_rungs(Path(record.ray_storage_path or ""))[-1]
    assert ended_before <= set(first_rung) and len(first_rung) >= 3, first_rung

    again = run_cli("sweep", "resume", killed.id, home=home)
    assert again.returncode == 0 and "already finished" in again.stdout
    unknown = run_cli("sweep", "resume", "nosuchid", home=home)
    assert unknown.returncode == 2 and "no sweep 'nosuchid'" in unknown.stderr


def _history(home: Path, run_id: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    _, tracking_uri = stores(home)
    return [m.step for m in MlflowClient(tracking_uri).get_metric_history(run_id, "epoch_seconds")]


def _asha_rungs(experiment: Path) -> list[dict[str, float]]:
    """ASHA's rungs (highest milestone first) as the sweep's last Tune checkpoint saved them."""
    newest = max(experiment.glob("callback-states-*.pkl"), key=lambda p: p.stat().st_mtime)
    states = pickle.loads(newest.read_bytes())
    memory = next(s for s in states.values() if s and "rungs" in s)
    (bracket,) = memory["rungs"]
    return list(bracket)


# Each training batch appends the pid of the worker that ran it: how many epochs were
# trained, by which processes. A short sleep per batch makes an epoch last long enough to
# be killed in the middle of.
COUNTED = '''
import os, time
import torch.nn as nn

BATCHES = {batches!r}

class _Count(nn.Module):
    def forward(self, x):
        if self.training:
            with open(BATCHES, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            time.sleep(0.03)
        return x

def counted(*, input_shape, num_classes):
    return nn.Sequential(_Count(), nn.Flatten(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, num_classes))
'''
DDP_EPOCHS = 5


def test_a_ddp_worker_killed_mid_epoch_resumes_from_its_checkpoint(
    tmp_path: Path, home: Path, ray_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = tmp_path / "batches.txt"
    (tmp_path / "counted_nets.py").write_text(COUNTED.format(batches=str(batches)))
    monkeypatch.syspath_prepend(str(tmp_path))  # to load the registered model here
    (tmp_path / "spec.yaml").write_text(
        "name: ddp-kill\nmodel: {family: 'counted_nets:counted'}\n"
        f"train: {{epochs: {DDP_EPOCHS}, workers: 2, max_failures: 1}}\n"
        "search: {trials: 1, space: {lr: {choice: [0.01]}}}\n"
    )
    sweep = _start_cli("sweep", "run", "spec.yaml", home=home, ray_address=ray_address,
                       cwd=tmp_path)
    try:
        # Mid-way through epoch 3: epochs 1 and 2 are checkpointed.
        per_epoch = _batches_per_epoch()
        deadline = time.monotonic() + 240
        while len(lines := _lines(batches)) < 2.5 * per_epoch:
            assert sweep.poll() is None, f"the sweep ended first: {sweep.stderr}"
            assert time.monotonic() < deadline, "training never got to epoch 3"
            time.sleep(0.05)
        victim = int(lines[-1])
        os.kill(victim, signal.SIGKILL)
        _, err = sweep.communicate(timeout=400)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err

    record = assert_finished_sweep(home, trials=1, epochs=DDP_EPOCHS)
    _, (run,) = trial_runs(home, record)
    assert run.data.tags["trialforge.state"] == "completed"
    workers = _lines(batches)
    assert victim in {int(pid) for pid in workers}
    assert len(set(workers)) >= 3, "a new worker replaced the killed one"
    trained = len(workers) / per_epoch
    # Epochs 1-2 (checkpointed), part of 3 (lost with the worker), then 3-5 again.
    assert DDP_EPOCHS < trained <= DDP_EPOCHS + 1, f"{trained:.2f} epochs trained"


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _batches_per_epoch() -> int:
    """Training batches of one epoch, over both workers: each trains half the split."""
    from trialforge import parse_spec
    from trialforge.train.loop import trial_data

    spec = parse_spec({"model": {"family": "mlp"}})  # the same data as the test's spec
    shard = len(trial_data(spec).y_train) // 2
    return 2 * -(-shard // (spec.train.batch_size // 2))  # train.batch_size is global
