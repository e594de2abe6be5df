"""The deployment files agree with the CLI: they parse, publish on loopback only, carry no
default password, keep Ray's token auth on, and run real `trialforge` commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO, run_cli
from trialforge.spec import load_spec

DEPLOY = REPO / "deploy"
STORES = {"MLFLOW_TRACKING_URI", "TRIALFORGE_DB", "TRIALFORGE_HOME", "TRIALFORGE_RAY_STORAGE",
          "RAY_AUTH_TOKEN"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose() -> dict[str, Any]:
    return documents(DEPLOY / "compose" / "docker-compose.yml")[0]


def test_compose_publishes_on_loopback_only_and_has_no_default_passwords() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "mlflow", "ray-head", "ray-worker", "dashboard"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    text = (DEPLOY / "compose" / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_SECRET_KEY",
                   "RAY_AUTH_TOKEN"):
        uses = re.findall(r"(?<!\$)\$\{" + secret + r"([^}]*)\}", text)  # $$: the shell's
        assert uses and all(use.startswith(":?") for use in uses), secret  # required, no default
        assert re.search(rf"^{secret}=$", (DEPLOY / "compose" / "env.example").read_text(), re.M)


def test_compose_services_run_the_cli_with_the_stores_it_reads(tmp_path: Path) -> None:
    services = compose()["services"]
    ray_env = services["ray-head"]["environment"]
    assert set(ray_env) >= STORES and ray_env["RAY_AUTH_MODE"] == "token"
    assert ray_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert ray_env["TRIALFORGE_DB"].startswith("postgresql+psycopg://trialforge:${POSTGRES")
    head = services["ray-head"]["command"]
    assert "--dashboard-port 8265" in head
    assert "127.0.0.1:8265:8265" in services["ray-head"]["ports"]
    words = shlex.split(services["dashboard"]["command"])
    assert words[:2] == ["trialforge", "dashboard"]
    options = {word for word in words if word.startswith("--")}
    usage = run_cli("dashboard", "--help", home=tmp_path / "home").stdout
    assert options and all(option in usage for option in options), options
    assert "--app-name basic-auth" in " ".join(services["mlflow"]["command"])
    sql = (DEPLOY / "compose" / "init-db.sql").read_text()
    assert "CREATE DATABASE mlflow " in sql and "CREATE DATABASE mlflow_auth " in sql


def test_kuberay_cluster_has_a_gpu_group_and_token_auth() -> None:
    cluster, claim = documents(DEPLOY / "kuberay" / "raycluster.yaml")
    assert (cluster["kind"], claim["kind"]) == ("RayCluster", "PersistentVolumeClaim")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    names = {item["name"]: item for item in head["env"]}
    assert names["RAY_AUTH_MODE"]["value"] == "token"
    assert "secretKeyRef" in names["RAY_AUTH_TOKEN"]["valueFrom"]
    assert set(names) >= STORES
    (gpu,) = cluster["spec"]["workerGroupSpecs"]
    worker = gpu["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {item["name"] for item in worker["env"]} == set(names)


def test_rayjob_entrypoint_is_a_valid_trialforge_command() -> None:
    (job,) = documents(DEPLOY / "kuberay" / "rayjob.yaml")
    assert job["kind"] == "RayJob"
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == "trialforge"
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:3] == ["trialforge", "sweep", "run"]
    spec_in_image = Path(words[3])
    assert spec_in_image.parts[:3] == ("/", "opt", "trialforge")  # the Dockerfile's WORKDIR
    spec = load_spec(REPO / spec_in_image.relative_to("/opt/trialforge"), words[4:])
    assert spec.train.use_gpu
    cluster, _ = documents(DEPLOY / "kuberay" / "raycluster.yaml")
    (gpu,) = cluster["spec"]["workerGroupSpecs"]
    per_pod = int(gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    held = spec.search.concurrency * spec.train.gpus_per_trial
    assert held <= gpu["maxReplicas"] * per_pod, "the GPU group holds the sweep's trials at once"
    assert gpu["minReplicas"] >= 1, "Ray sees a GPU before a GPU sweep starts (check_gpus)"


def test_dockerfile_installs_trialforge_without_editable_mode() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG RAY_IMAGE=rayproject/ray:2\.60\.\d+-py311", text, re.M)
    assert 'pip install --no-cache-dir ".[postgres]"' in text and " -e " not in text
    assert "TRIALFORGE_DASHBOARDS" not in text, "the app ships inside the package"
    assert "USER ray" in text


@pytest.mark.parametrize("script", ["start.sh", "check.sh", "stop.sh"])
def test_local_scripts_bind_loopback_and_keep_token_auth(script: str) -> None:
    path = DEPLOY / "local" / script
    assert path.stat().st_mode & 0o111, "executable"
    text = path.read_text() + (DEPLOY / "local" / "env.sh").read_text()
    assert "BIND=127.0.0.1" in text
    if script == "start.sh":
        assert "RAY_AUTH_MODE=token" in text and "ray stop" not in text.replace("`ray stop`", "")
