"""A sweep submitted to a real two-node Ray cluster on 127.0.0.1 (deploy/local: `ray start`
head and worker node, an `mlflow server`), through `trialforge job ...` as a user would."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from support import REPO, STORE_VARIABLES, run_cli
from trialforge import query
from trialforge.catalog import Catalog

pytestmark = pytest.mark.e2e
LOCAL = REPO / "deploy" / "local"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


class Cluster:
    """The local cluster's addresses and the environment a user submits from."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.url = f"http://127.0.0.1:{env['DASHBOARD_PORT']}"
        self.tracking_uri = f"http://127.0.0.1:{env['MLFLOW_PORT']}"
        self.db_url = f"sqlite:///{folder / 'shared' / 'trialforge.db'}"
        self.home = folder / "shared"

    def user_env(self, **extra: str) -> dict[str, str]:
        return {"RAY_AUTH_TOKEN": self.env["RAY_AUTH_TOKEN"],
                "MLFLOW_TRACKING_URI": self.tracking_uri, "TRIALFORGE_DB": self.db_url,
                **extra}

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, home=self.home, env=self.user_env(**extra), timeout=600)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # A short path: Ray's Unix sockets live under it, and those cannot exceed 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="tfc-", dir="/tmp"))
    ray_port, dashboard, mlflow_port, head_agent, worker_agent = free_ports(5)
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    env.update(TF_CLUSTER_DIR=str(folder), RAY_PORT=str(ray_port), DASHBOARD_PORT=str(dashboard),
               MLFLOW_PORT=str(mlflow_port), HEAD_AGENT_PORT=str(head_agent),
               WORKER_AGENT_PORT=str(worker_agent), RAY_AUTH_TOKEN=secrets.token_hex(16),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # the venv, active
    started = time.monotonic()
    done = subprocess.run([str(LOCAL / "start.sh")], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ok: 2 Ray nodes alive" in done.stdout
        print(f"local cluster up in {time.monotonic() - started:.1f} s")
        yield Cluster(folder, env)
    finally:
        subprocess.run([str(LOCAL / "stop.sh")], env=env, timeout=120, check=False)
    leftovers = subprocess.run(["pgrep", "-f", f"{folder}/ray/"], capture_output=True, text=True)
    shutil.rmtree(folder, ignore_errors=True)
    assert not leftovers.stdout.strip(), "stop.sh left processes of the cluster running"


def job_id(submitted: subprocess.CompletedProcess[str]) -> str:
    assert submitted.returncode == 0, submitted.stderr
    found = re.search(r"job (trialforge-[0-9a-f]+) submitted", submitted.stdout)
    assert found, submitted.stdout
    return found.group(1)


def test_a_sweep_runs_on_both_nodes_and_leaves_the_embedded_records(cluster: Cluster) -> None:
    started = time.monotonic()
    job = job_id(cluster.cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", cluster.url,
                             "search.trials=2", "train.epochs=1"))
    followed = cluster.cli("job", "logs", job, "--follow")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert f"job {job} SUCCEEDED" in followed.stderr
    assert "sweep run -" not in followed.stdout and "finished in" in followed.stdout
    print(f"submit to SUCCEEDED: {time.monotonic() - started:.1f} s")

    sweep_id = job.removeprefix("trialforge-")
    record = query.sweep(cluster.db_url, sweep_id)
    assert record.state == "finished" and record.model_version == "digits-cnn/1"
    catalog = Catalog(cluster.db_url)
    assert catalog.get_job(job).state == "SUCCEEDED"
    catalog.close()

    client = MlflowClient(cluster.tracking_uri)  # over HTTP, from the MLflow server
    trials = query.trials(cluster.tracking_uri, record.mlflow_experiment_id, sweep_id)
    assert len(trials) == 2 and set(trials["status"]) == {"FINISHED"}
    nodes = {client.get_run(run_id).data.tags["trialforge.node_id"] for run_id in trials["run_id"]}
    assert len(nodes) == 2, "one CPU per node: the two trials ran on different nodes"
    parent = client.get_run(record.mlflow_parent_run_id)
    assert parent.info.status == "FINISHED"
    aliases = client.get_registered_model("digits-cnn").aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": "1"}

    listed = cluster.cli("job", "list")
    assert re.search(rf"{job}.*SUCCEEDED", listed.stdout), listed.stdout


def test_job_stop_ends_a_running_job(cluster: Cluster) -> None:
    job = job_id(cluster.cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", cluster.url,
                             "search.trials=4", "train.epochs=40", "register.enabled=false"))
    sweep_id = job.removeprefix("trialforge-")
    deadline = time.monotonic() + 120
    while not query.sweeps(cluster.db_url).query("id == @sweep_id").size:
        assert time.monotonic() < deadline, "the sweep never started"
        time.sleep(1)
    stopped = cluster.cli("job", "stop", job)
    assert stopped.returncode == 0, stopped.stderr
    assert f"job {job} STOPPED" in stopped.stdout
    catalog = Catalog(cluster.db_url)
    assert catalog.get_job(sweep_id).state == "STOPPED"  # found by its sweep id too
    catalog.close()
    assert query.sweep(cluster.db_url, sweep_id).state != "finished"


def test_a_wrong_token_is_refused_with_one_clear_line(cluster: Cluster) -> None:
    refused = cluster.cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", cluster.url,
                          RAY_AUTH_TOKEN="not-the-token")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: the Ray cluster at {cluster.url} refused the token (RAY_AUTH_TOKEN): set "
        "RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH, to the cluster's token (`ray get-auth-token` "
        "on its head node)"]
    logs = cluster.cli("job", "list", RAY_AUTH_TOKEN="not-the-token")
    assert "refused" not in logs.stdout  # listing still works from the catalog


def test_a_gpu_sweep_is_refused_at_submission_by_a_cluster_without_gpus(
    cluster: Cluster,
) -> None:
    catalog = Catalog(cluster.db_url)
    jobs_before = len(catalog.list_jobs())
    refused = cluster.cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", cluster.url,
                          "train.use_gpu=true")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: train.use_gpu: a trial needs 1 GPU, but {cluster.url} sees 0 GPU and 2 CPU: "
        "set train.use_gpu=false, or add GPU nodes to the cluster"]
    assert len(catalog.list_jobs()) == jobs_before, "nothing was submitted"
    catalog.close()


def test_rays_own_cli_works_with_what_cluster_env_exports(cluster: Cluster) -> None:
    exported = dict(re.findall(r'^export (\w+)="?([^"\n]*)"?$',
                               (cluster.folder / "cluster.env").read_text(), re.MULTILINE))
    env = {"PATH": cluster.env["PATH"], "HOME": os.environ.get("HOME", "/root"), **exported}
    listed = subprocess.run(["ray", "job", "list", "--address", exported["TRIALFORGE_CLUSTER"]],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    # Without RAY_AUTH_MODE=token, Ray's CLI sent no token: "Missing authentication token".
    assert "authentication" not in listed.stdout + listed.stderr


def test_a_sweep_survives_losing_its_worker_node(cluster: Cluster) -> None:
    """Last in this module: the worker node stays dead."""
    job = job_id(cluster.cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", cluster.url,
                             "search.trials=2", "train.epochs=8", "train.max_failures=2",
                             "search.scheduler.type=fifo"))
    sweep_id = job.removeprefix("trialforge-")
    client = MlflowClient(cluster.tracking_uri)
    worker_node = next(node["node_id"] for node in _nodes(cluster) if not node["is_head_node"])
    deadline = time.monotonic() + 180
    while not _epochs_on(client, cluster, sweep_id, worker_node):
        assert time.monotonic() < deadline, "no trial trained on the worker node"
        time.sleep(0.5)
    # The node goes as in a crash: its raylet and agents killed, its trial process with them.
    found = subprocess.run(["pgrep", "-f", f"{cluster.folder}/ray/w"], capture_output=True,
                           text=True, check=False)
    for pid in found.stdout.split():
        os.kill(int(pid), signal.SIGKILL)

    followed = cluster.cli("job", "logs", job, "--follow")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    # Ray's head marks a node dead after several missed health checks (~15 s): the sweep,
    # its trial retried on the head, can finish before then.
    deadline = time.monotonic() + 90
    while [n["state"] for n in _nodes(cluster) if n["node_id"] == worker_node] != ["DEAD"]:
        assert time.monotonic() < deadline, "the killed worker node is still ALIVE after 90 s"
        time.sleep(1)
    record = query.sweep(cluster.db_url, sweep_id)
    assert record.state == "finished" and record.trials_completed == 2
    for run_id in query.trials(cluster.tracking_uri, record.mlflow_experiment_id,
                               sweep_id)["run_id"]:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.tags["trialforge.state"] == "completed"
        steps = [m.step for m in client.get_metric_history(run_id, "val_accuracy")]
        assert steps == list(range(1, 9)), "every epoch once, in order"


def _nodes(cluster: Cluster) -> list[dict[str, object]]:
    listed = subprocess.run(
        ["ray", "list", "nodes", "--address", f"127.0.0.1:{cluster.env['RAY_PORT']}",
         "--format", "json"],
        env={**cluster.env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True,
        timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    nodes: list[dict[str, object]] = json.loads(listed.stdout)
    return nodes


def _epochs_on(client: MlflowClient, cluster: Cluster, sweep_id: str, node: object) -> bool:
    """Whether a trial of the sweep has logged an epoch on `node`."""
    record = query.sweep(cluster.db_url, sweep_id) if query.sweeps(
        cluster.db_url).query("id == @sweep_id").size else None
    if record is None or not record.mlflow_experiment_id:
        return False
    runs = client.search_runs([record.mlflow_experiment_id],
                              f"tags.`trialforge.node_id` = '{node}'")
    return any("val_accuracy" in run.data.metrics for run in runs)
