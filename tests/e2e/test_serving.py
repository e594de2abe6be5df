"""The champion serves the raw rows its table was made of, through MLflow's own CLI, and
is scored once on a test split no trial saw."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from trialforge import load_model, parse_spec, query, resolve_home, run_sweep
from trialforge.search.holdout import holdout_metric

pytestmark = pytest.mark.e2e


def test_the_champion_serves_raw_csv_rows_and_is_scored_once_on_the_test_split(
    tmp_path: Path, ray_address: str,
) -> None:
    rng = np.random.default_rng(0)
    size = rng.normal(size=300)
    table = pd.DataFrame({"size": size * 50 + 400,  # far from standardized
                          "legs": rng.integers(0, 5, 300),
                          "colour": rng.choice(["red", "green"], 300),
                          "label": np.where(size > 0, "big", "small")})
    table.loc[::17, "size"] = np.nan  # missing: the training mean
    table.loc[table["size"].isna(), "label"] = "small"
    table.to_csv(tmp_path / "animals.csv", index=False)
    home = resolve_home(tmp_path / "home")
    spec = parse_spec({
        "name": "raw-rows", "model": {"family": "mlp", "depth": 1, "width": 32},
        "data": {"dataset": "table", "path": str(tmp_path / "animals.csv"), "target": "label",
                 "test_fraction": 0.2},
        "train": {"epochs": 25, "lr": 0.01},
        "search": {"trials": 1, "concurrency": 1, "scheduler": {"type": "fifo"}},
        "register": {"alias": "prod"}})
    result = run_sweep(spec, home)
    assert result.model is not None and result.test["test_accuracy"] > 0.9

    # The test score, once, everywhere a user looks.
    client = MlflowClient(home.tracking_uri)
    assert result.parent_run_id is not None
    history = client.get_metric_history(result.parent_run_id, "test_accuracy")
    assert [m.value for m in history] == [result.test["test_accuracy"]], "scored once"
    objective = result.test[holdout_metric(spec.search.objective)]  # test_loss, for val_loss
    version = client.get_model_version("raw-rows", result.model.version)
    assert float(version.tags["trialforge.test_value"]) == pytest.approx(objective, rel=1e-5)
    assert query.sweep(home.db_url, result.sweep_id).test_value == pytest.approx(objective)

    # Raw rows with their column names, as a user has them: a missing size, an unseen colour.
    rows = pd.DataFrame({"size": [520.0, 290.0, 470.0, np.nan, 330.0],
                         "legs": [4, 2, 0, 3, 1],
                         "colour": ["red", "green", "blue", "red", "green"]})
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "predictions.json"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    done = subprocess.run(
        [str(mlflow_cli), "models", "predict", "-m", "models:/raw-rows@prod",
         "-i", str(tmp_path / "rows.csv"), "-t", "csv", "-o", str(out),
         "--env-manager", "local"],
        env={**os.environ, "MLFLOW_TRACKING_URI": home.tracking_uri},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-600:]
    answers = pd.DataFrame(json.loads(out.read_text())["predictions"])
    assert answers["label"].tolist() == ["big", "small", "big", "small", "small"]
    assert np.allclose(answers["probability_big"] + answers["probability_small"], 1.0)
    assert answers["probability_big"].nunique() == 5, "each row its own answer"

    # And `mlflow models serve`, on 127.0.0.1, answers the same rows posted as CSV.
    assert _served(mlflow_cli, home.tracking_uri, (tmp_path / "rows.csv").read_bytes()) == \
        answers["label"].tolist()

    # The signature names the raw columns; load_model carries the same preprocessing.
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri("raw-rows", result.model.version),
        dst_path=str(tmp_path / "model"), tracking_uri=home.tracking_uri)
    signature = Model.load(local).signature
    assert signature is not None
    assert signature.inputs.input_names() == ["size", "legs", "colour"]
    model = load_model("models:/raw-rows@prod", home.tracking_uri)
    with torch.no_grad():
        same = model.preprocessing.answers(model(model.preprocessing.transform(rows)))
    assert same["label"].tolist() == answers["label"].tolist()


def _served(mlflow_cli: Path, tracking_uri: str, rows: bytes) -> list[str]:
    """The labels `mlflow models serve` gives for CSV `rows`, then the server is stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", "models:/raw-rows@prod", "-h", "127.0.0.1",
         "-p", str(port), "--env-manager", "local", "-w", "1"],
        # As in an activated environment: MLflow starts `uvicorn` from the PATH.
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
             "PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve died"
                time.sleep(0.5)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=rows,
                                         headers={"Content-Type": "text/csv"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return [row["label"] for row in json.loads(response.read())["predictions"]]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
