"""Chaos: the MLflow server dies mid-sweep and comes back 30 s later. Training goes on, and
afterwards every per-epoch metric of every trial is in MLflow, in order, once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from support import REPO, STORE_VARIABLES, TRIALFORGE
from trialforge import query

pytestmark = pytest.mark.e2e

MLFLOW = Path(sys.executable).with_name("mlflow")
OUTAGE_S = 30
# Two trials of the spec's own MLP (no search space), small batches (0.08-0.25 s an epoch
# here), one after the other: the first trains through the server's death and ends while it
# is down, the second starts (and may end) while it is down, and MLflow hears of it only
# when it is back. The sweep lasts little longer than the outage makes it.
EPOCHS = 100
SWEEP = ("sweep", "run", "jobs/mlp_digits.yaml", "search.trials=2", "search.concurrency=1",
         f"train.epochs={EPOCHS}", "train.batch_size=16", "search.space={}",
         "search.scheduler={type: fifo}", "register.enabled=false")


class MlflowServer:
    """`mlflow server` on 127.0.0.1 (sqlite store, artifacts served), in its own process group
    so that a stop takes its workers down too, as a crash would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.folder / "mlflow.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db",
                 "--artifacts-destination", str(self.folder / "artifacts")],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        self.launch()
        deadline = time.monotonic() + 120
        while not self.answers():
            assert self.process is not None and self.process.poll() is None, \
                (self.folder / "mlflow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the MLflow server did not start"
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            return requests.get(f"{self.uri}/health", timeout=1).ok
        except requests.RequestException:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path)
    try:
        yield server
    finally:
        server.kill()


def first_epoch_logged(client: MlflowClient) -> bool:
    experiment = client.get_experiment_by_name("mlp-digits")
    if experiment is None:
        return False
    runs = client.search_runs([experiment.experiment_id], "tags.`trialforge.kind` = 'trial'")
    return any(run.data.metrics for run in runs)


def _sweep_env(home: Path, ray_address: str, server: MlflowServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    env.update(TRIALFORGE_HOME=str(home), RAY_ADDRESS=ray_address, MLFLOW_TRACKING_URI=server.uri)
    return env


def _start_sweep(args: tuple[str, ...] | list[str], env: dict[str, str],
                 output: Path) -> subprocess.Popen[bytes]:
    """`trialforge ARGS` in a process group of its own, its output to `output`."""
    with open(output, "wb") as log:
        return subprocess.Popen([str(TRIALFORGE), *args], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _await_first_epoch(server: MlflowServer, client: MlflowClient,
                       sweep: subprocess.Popen[bytes], output: Path) -> float:
    """Wait until an epoch is in MLflow; the deadline the rest of the test keeps to."""
    deadline = time.monotonic() + 120
    while not (server.answers() and first_epoch_logged(client)):
        assert sweep.poll() is None, output.read_text()[-3000:]
        assert time.monotonic() < deadline, "no epoch reached MLflow"
        time.sleep(0.2)
    return deadline


def test_an_mlflow_outage_mid_sweep_loses_and_repeats_no_epoch(
    server: MlflowServer, home: Path, ray_address: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    # The sweep starts with the server: its driver waits for MLflow to answer.
    server.launch()
    env = _sweep_env(home, ray_address, server)
    output = tmp_path / "sweep.log"
    sweep = _start_sweep(SWEEP, env, output)
    try:
        client = MlflowClient(server.uri)
        _await_first_epoch(server, client, sweep, output)
        server.kill()
        down = time.time()
        time.sleep(OUTAGE_S)
        assert sweep.poll() is None, "the sweep waits for MLflow: " + output.read_text()[-3000:]
        server.start()
        up = time.time()
        assert sweep.wait(timeout=300) == 0, output.read_text()[-5000:]
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    print(f"sweep with a {up - down:.0f} s outage: {time.monotonic() - started:.1f} s")

    sweeps = query.sweeps(f"sqlite:///{home}/trialforge.db")
    assert list(sweeps.state) == ["finished"], sweeps
    record = query.sweep(f"sqlite:///{home}/trialforge.db", sweeps.id[0])
    assert record.mlflow_experiment_id is not None
    runs = client.search_runs([record.mlflow_experiment_id],
                              f"tags.`trialforge.sweep_id` = '{record.id}'")
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    trials = [r for r in runs if r.data.tags.get("trialforge.kind") == "trial"]
    assert len(trials) == 2
    during_outage = 0
    for run in sorted(trials, key=lambda r: r.info.start_time):
        print(f"{run.info.run_name}: run created {run.info.start_time / 1000 - down:+.0f} s "
              "from the server's death")
        assert run.data.tags["trialforge.state"] == "completed"
        best = client.list_artifacts(run.info.run_id, "best_checkpoint")
        assert [a.path for a in best] == ["best_checkpoint/checkpoint.pt"]
        assert set(run.data.metrics) >= {"val_accuracy", "train_loss", "epoch_seconds"}
        for key in (key for key in run.data.metrics if not key.startswith("best_")):
            history = client.get_metric_history(run.info.run_id, key)
            steps = [m.step for m in history]
            assert sorted(steps) == list(range(1, EPOCHS + 1)), f"{key}: each epoch once"
            stamps = [m.timestamp for m in sorted(history, key=lambda m: m.step)]
            assert stamps == sorted(stamps), f"{key}: epochs in order"
            during_outage += sum(down * 1000 < stamp < up * 1000 for stamp in stamps)
    assert during_outage, "epochs trained while MLflow was down reached it afterwards"


def _epochs_journaled(home: Path) -> int:
    """Epoch writes in the sweep's journal (those MLflow has not acknowledged, and more)."""
    return sum(path.read_text().count('"op": "epoch"') for path in home.glob("journals/*.jsonl"))


def test_a_driver_killed_while_mlflow_is_down_loses_nothing_on_resume(
    server: MlflowServer, home: Path, ray_address: str, tmp_path: Path
) -> None:
    epochs = 40
    server.start()
    env = _sweep_env(home, ray_address, server)
    # One trial: it trains through the outage and the kill, and resumes from its checkpoint.
    sweep_args = [{"train.epochs": f"train.epochs={epochs}", "search.trials": "search.trials=1"}
                  .get(arg.partition("=")[0], arg) for arg in SWEEP]
    output = tmp_path / "sweep.log"
    sweep = _start_sweep(sweep_args, env, output)
    try:
        client = MlflowClient(server.uri)
        deadline = _await_first_epoch(server, client, sweep, output)
        server.kill()
        journaled = _epochs_journaled(home)
        while _epochs_journaled(home) < journaled + 10:  # epochs MLflow never saw
            assert sweep.poll() is None, output.read_text()[-3000:]
            assert time.monotonic() < deadline, "training stopped during the outage"
            time.sleep(0.1)
        os.killpg(sweep.pid, signal.SIGKILL)  # the driver dies before MLflow is back
        sweep.wait()
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    server.start()
    (sweep_id,) = query.sweeps(f"sqlite:///{home}/trialforge.db").id
    time.sleep(2)  # Ray ends the dead driver's trial actors
    resumed = subprocess.run([str(TRIALFORGE), "sweep", "resume", sweep_id], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    assert "an earlier driver of sweep" in resumed.stderr, "the journal was sent first"

    record = query.sweep(f"sqlite:///{home}/trialforge.db", sweep_id)
    assert record.state == "finished" and record.mlflow_experiment_id is not None
    runs = client.search_runs([record.mlflow_experiment_id],
                              f"tags.`trialforge.sweep_id` = '{sweep_id}'")
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    trials = [r for r in runs if r.data.tags.get("trialforge.kind") == "trial"]
    assert len(trials) == 1 and trials[0].data.tags["trialforge.state"] == "completed"
    for run in trials:
        for key in ("val_accuracy", "train_loss", "epoch_seconds"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(1, epochs + 1)), f"{key}: each epoch once"
    assert not list(home.glob("journals/*.jsonl")), "nothing is owed any more"
