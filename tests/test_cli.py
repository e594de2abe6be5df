"""The CLI without Ray: help, and user mistakes as one red line, exit 2, nothing written."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from support import REPO, TRIALFORGE, run_cli
from trialforge.home import Home


def test_help_everywhere(home: Path) -> None:
    for command in ([], ["sweep"], ["sweep", "run"], ["sweep", "list"], ["sweep", "show"],
                    ["model"], ["model", "list"], ["model", "alias"], ["dashboard"], ["job"],
                    ["job", "submit"], ["job", "list"], ["job", "logs"], ["job", "stop"],
                    ["replay"]):
        done = run_cli(*command, "--help", home=home)
        assert done.returncode == 0, done.stderr
        assert "Usage: trialforge" in done.stdout


def test_help_is_fast(home: Path) -> None:
    started = time.monotonic()
    run_cli("--help", home=home)
    elapsed = time.monotonic() - started
    # Not a benchmark (benchmarks/ measures it): a guard that torch/Ray are not imported.
    assert elapsed < 10, elapsed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs/cnn_digits.yaml", "train.epochs=0"], "train.epochs: Input should be greater"),
        (["jobs/cnn_digits.yaml", "search.space.lr={loguniform: [1, 0.1]}"], "must be below"),
        (["jobs/cnn_digits.yaml", "model.family=resnet9000"], "unknown family"),
        (["jobs/cnn_digits.yaml", "search.metric=f1"], "metric 'f1' is unknown"),
        (["jobs/cnn_digits.yaml", "search.scheduler.type=bohb"], "'asha'"),
        (["jobs/cnn_digits.yaml", "data.dataset=imagenet"], "data.dataset"),
        (["jobs/cnn_digits.yaml", "model.activation=swish"], "model.activation"),
        (["jobs/cnn_digits.yaml", "trials"], "write key=value"),
        (["jobs/no_such_spec.yaml"], "spec file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    home: Path, args: list[str], message: str
) -> None:
    done = run_cli("sweep", "run", *args, home=home)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr
    assert not home.exists(), "a rejected spec must not create the home folder"


def test_unknown_sweep_id_is_a_clear_error(home: Path) -> None:
    done = run_cli("sweep", "show", "deadbeef", home=home)
    assert done.returncode == 2
    assert "no sweep 'deadbeef'" in done.stderr


def test_empty_catalog_says_how_to_start(home: Path) -> None:
    done = run_cli("sweep", "list", home=home)
    assert done.returncode == 0
    assert "no sweeps yet" in done.stdout


def test_console_script_is_installed() -> None:
    assert TRIALFORGE.exists()
    assert (REPO / "jobs" / "cnn_digits.yaml").exists()


def test_dashboard_refuses_a_port_in_use(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("dashboard", "--port", str(port), home=home, timeout=60)
    assert done.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "choose another --port" in done.stderr
    assert not home.exists()


@pytest.mark.e2e
def test_model_alias_moves_an_alias_or_says_why_not(tiny_sweep: Home) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tiny_sweep.tracking_uri)
    try:
        done = run_cli("model", "alias", "digits-cnn", "1", "challenger", home=tiny_sweep.root)
        assert done.returncode == 0, done.stderr
        assert "models:/digits-cnn@challenger -> version 1" in done.stdout
        assert client.get_registered_model("digits-cnn").aliases["challenger"] == 1
        moved = run_cli("model", "alias", "digits-cnn", "1", "champion", home=tiny_sweep.root)
        assert "(was version 1)" in moved.stdout
    finally:
        client.delete_registered_model_alias("digits-cnn", "challenger")
    for args, message in [
        (["digits-cnn", "9", "challenger"], "no version 9 of registered model 'digits-cnn'"),
        (["no-such-model", "1", "champion"], "no version 1 of registered model 'no-such-model'"),
        (["digits-cnn", "1", "v2"], "alias 'v2' is not allowed"),
        (["digits-cnn", "1", "latest"], "alias 'latest' is not allowed"),
    ]:
        refused = run_cli("model", "alias", *args, home=tiny_sweep.root)
        assert refused.returncode == 2, args
        assert message in refused.stderr and "Traceback" not in refused.stderr
    assert client.get_registered_model("digits-cnn").aliases == {"champion": 1}


def test_job_submit_needs_shared_stores_and_a_reachable_cluster(home: Path) -> None:
    bare = run_cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", "http://127.0.0.1:1",
                   home=home)
    assert bare.returncode == 2
    assert "a cluster job needs shared stores; set MLFLOW_TRACKING_URI and TRIALFORGE_DB" in (
        bare.stderr)
    stores = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1", "TRIALFORGE_DB": f"sqlite:///{home}.db"}
    unreachable = run_cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster",
                          "http://127.0.0.1:1", home=home, env=stores)
    assert unreachable.returncode == 2
    assert unreachable.stderr.strip().splitlines() == [
        "error: cannot reach the Ray cluster at http://127.0.0.1:1: is it running, and is this "
        "its dashboard address (http://HEAD:8265)?"]
    bad_spec = run_cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster",
                       "http://127.0.0.1:1", "train.epochs=0", home=home, env=stores)
    assert bad_spec.returncode == 2 and "train.epochs" in bad_spec.stderr
    assert not home.exists() and not Path(f"{home}.db").exists()  # nothing written


def test_job_commands_on_an_unreachable_cluster_say_so(home: Path) -> None:
    from datetime import datetime, timezone

    from trialforge.catalog import Catalog, JobRecord

    db = f"sqlite:///{home}.db"
    catalog = Catalog(db)
    catalog.add_job(JobRecord(
        id="trialforge-0badc0de", cluster="http://127.0.0.1:1", sweep_id="0badc0de",
        spec_name="cnn-digits", entrypoint="trialforge sweep run jobs/cnn_digits.yaml",
        state="RUNNING", submitted_at=datetime.now(timezone.utc)))
    catalog.close()
    listed = run_cli("job", "list", home=home, env={"TRIALFORGE_DB": db})
    assert listed.returncode == 0, listed.stderr
    assert "RUNNING (cluster unreachable)" in listed.stdout  # the catalog's last word
    for command in (["logs", "0badc0de"], ["stop", "trialforge-0bad"]):
        done = run_cli("job", *command, home=home, env={"TRIALFORGE_DB": db})
        assert done.returncode == 2, command
        assert "cannot reach the Ray cluster at http://127.0.0.1:1" in done.stderr
    unknown = run_cli("job", "logs", "nope", home=home, env={"TRIALFORGE_DB": db})
    assert unknown.returncode == 2 and "no job 'nope'" in unknown.stderr


def test_job_env_must_be_key_value(home: Path) -> None:
    stores = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1", "TRIALFORGE_DB": f"sqlite:///{home}.db"}
    done = run_cli("job", "submit", "jobs/cnn_digits.yaml", "--cluster", "http://127.0.0.1:1",
                   "--job-env", "MLFLOW_TRACKING_URI", home=home, env=stores)
    assert done.returncode == 2
    assert "--job-env takes KEY=VALUE" in done.stderr


def test_dashboard_without_its_app_says_where_it_looked(home: Path, tmp_path: Path) -> None:
    done = run_cli("dashboard", home=home, env={"TRIALFORGE_DASHBOARDS": str(tmp_path / "no")})
    assert done.returncode == 2
    assert f"the dashboard app is not at {tmp_path / 'no' / 'app.py'}" in done.stderr


def test_init_writes_an_example_with_the_data_it_reads(home: Path, tmp_path: Path) -> None:
    done = run_cli("init", str(tmp_path / "project"), "--example", "mlp_wine_table", home=home)
    assert done.returncode == 0, done.stderr
    spec = tmp_path / "project" / "jobs" / "mlp_wine_table.yaml"
    assert spec.read_text() == (REPO / "jobs" / "mlp_wine_table.yaml").read_text()
    data = tmp_path / "project" / "jobs" / "data" / "wine.csv"
    assert data.read_bytes() == (REPO / "jobs" / "data" / "wine.csv").read_bytes()
    folder = run_cli("init", str(tmp_path / "text"), "--example", "rnn_text", home=home)
    assert folder.returncode == 0, folder.stderr
    copied = sorted(p.name for p in (tmp_path / "text" / "jobs" / "data" / "corpus").iterdir())
    assert copied == sorted(p.name for p in (REPO / "jobs" / "data" / "corpus").iterdir())
    assert not home.exists(), "init touches no store"
