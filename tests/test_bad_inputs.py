"""Bad input a user can hit, through the real CLI: one red `error:` line that names the thing
and the fix, exit code 2, no traceback, and nothing half-written.

Every case fails before Ray starts (validation comes first), so none needs a Ray instance.
Cases whose error needs the data, the registry or a checkpoint read take a few seconds (the
CLI imports the training stack); the spec's own mistakes take a fraction of one.
"""

from __future__ import annotations

import argparse
import http.server
import os
import socket
import sqlite3
import threading
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from support import REPO, run_cli

# A setup writes what its case needs under the test's folder and returns placeholders for the
# case's arguments, environment and message ({tmp} and {repo} are always there).
Setup = Callable[[Path, ExitStack], dict[str, str]]
HOME_FIX = "point --home or TRIALFORGE_HOME at a folder you can write"
MLP = "jobs/mlp_digits.yaml"
TABLE = "jobs/mlp_wine_table.yaml"
TRANSFER = "jobs/transfer_digits.yaml"
SHARED_STORES = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:{closed}",
                 "TRIALFORGE_DB": "sqlite:///{tmp}/shared/trialforge.db"}


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    message: str  # a distinctive part of the one error line: the field, or the fix
    setup: Setup | None = None
    env: dict[str, str] = field(default_factory=dict)
    home: str = "{tmp}/home"
    exit_code: int = 2


def _none(tmp: Path, stack: ExitStack) -> dict[str, str]:
    return {}


def _file(name: str, text: str) -> Setup:
    def write(tmp: Path, stack: ExitStack) -> dict[str, str]:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)
        return {}
    return write


def _closed_port(tmp: Path, stack: ExitStack) -> dict[str, str]:
    """A port nothing listens on: bound to learn a free number, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return {"closed": str(probe.getsockname()[1])}


def _port_in_use(tmp: Path, stack: ExitStack) -> dict[str, str]:
    taken = stack.enter_context(socket.socket())
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return {"taken": str(taken.getsockname()[1])}


class _RefusesEveryToken(http.server.BaseHTTPRequestHandler):
    """What a Ray dashboard with token authentication answers a wrong token: 401."""

    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Unauthorized: invalid authentication token")

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


def _token_refusing_cluster(tmp: Path, stack: ExitStack) -> dict[str, str]:
    """A stand-in for a cluster's Jobs API that refuses the token (a real cluster refusing
    one is tests/e2e/test_cluster_e2e.py's case; starting one here would take a minute)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RefusesEveryToken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return {"refusing": str(server.server_address[1]), **_closed_port(tmp, stack)}


def _weights(tmp: Path) -> Path:
    path = tmp / "good.pt"
    torch.save({"features.0.weight": torch.ones(4, 1, 3, 3)}, path)
    return path


def _random_bytes_checkpoint(tmp: Path, stack: ExitStack) -> dict[str, str]:
    (tmp / "backbone.pt").write_bytes(os.urandom(256))
    return {}


def _truncated_checkpoint(tmp: Path, stack: ExitStack) -> dict[str, str]:
    data = _weights(tmp).read_bytes()
    (tmp / "backbone.pt").write_bytes(data[: len(data) // 2])  # a copy cut short
    return {}


def _garbled_checkpoint(tmp: Path, stack: ExitStack) -> dict[str, str]:
    """A whole zip whose pickle is garbage: the archive is fine, its contents are not."""
    with zipfile.ZipFile(_weights(tmp)) as source, \
            zipfile.ZipFile(tmp / "backbone.pt", "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, b"\x80\x02garbage" if info.filename.endswith("data.pkl")
                            else data)
    return {}


def _unsafe_checkpoint(tmp: Path, stack: ExitStack) -> dict[str, str]:
    torch.save({"features.0.weight": torch.ones(1), "args": argparse.Namespace(lr=0.1)},
               tmp / "backbone.pt")
    return {}


def _not_a_state_dict(tmp: Path, stack: ExitStack) -> dict[str, str]:
    torch.save([torch.ones(1)], tmp / "backbone.pt")
    return {}


def _empty_catalog(tmp: Path, stack: ExitStack) -> dict[str, str]:
    from trialforge.catalog import Catalog

    (tmp / "home").mkdir()
    Catalog(f"sqlite:///{tmp / 'home' / 'trialforge.db'}").close()
    return {}


def _unwritable_home(tmp: Path, stack: ExitStack) -> dict[str, str]:
    """A home the user cannot write. Root writes through chmod 0o555, so then the home lies
    under a regular file, a folder nothing can create."""
    if os.geteuid() == 0:
        (tmp / "plain-file").write_text("not a folder")
        return {"unwritable": str(tmp / "plain-file" / "home")}
    home = tmp / "readonly-home"
    home.mkdir()
    home.chmod(0o555)
    stack.callback(home.chmod, 0o755)
    return {"unwritable": str(home)}


def _plain_file(tmp: Path, stack: ExitStack) -> dict[str, str]:
    (tmp / "home").write_text("a file where the home should be")
    return {}


CASES = [
    # The spec file itself.
    Case("malformed-yaml", ("sweep", "run", "{tmp}/spec.yaml"),
         "is not valid YAML (line 2, column 6): expected ',' or ']'",
         _file("spec.yaml", "name: [cnn\nmodel: 1\n")),
    Case("top-level-not-a-mapping", ("sweep", "run", "{tmp}/spec.yaml"),
         "the top level must be a mapping like 'name: my-sweep'",
         _file("spec.yaml", "- name: cnn\n- model: {family: mlp}\n")),
    Case("missing-spec-file", ("sweep", "run", "{tmp}/nope.yaml"), "spec file not found: "),
    Case("empty-spec-file", ("sweep", "run", "{tmp}/spec.yaml"),
         "is empty: write at least 'name: my-sweep'", _file("spec.yaml", "# nothing yet\n")),
    Case("model-written-as-a-string", ("sweep", "run", "{tmp}/spec.yaml"),
         "model: write a mapping like {family: cnn} (got 'cnn')",
         _file("spec.yaml", "name: x\nmodel: cnn\n")),
    Case("unknown-top-level-key", ("sweep", "run", "{tmp}/spec.yaml"),
         "unknown field 'trails' (did you mean 'trials'?)",
         _file("spec.yaml", "name: x\nsearch: {trails: 3}\n")),
    Case("unknown-section", ("sweep", "run", "{tmp}/spec.yaml"),
         "unknown field 'training' (did you mean 'train'?); allowed: data, model, name, register, "
         "search, seed, train",
         _file("spec.yaml", "name: x\ntraining: {epochs: 3}\n")),
    # Fields: types, ranges and names.
    Case("epochs-not-a-number", ("sweep", "run", MLP, "train.epochs=abc"),
         "train.epochs: Input should be a valid integer"),
    Case("epochs-zero", ("sweep", "run", MLP, "train.epochs=0"),
         "train.epochs: Input should be greater than or equal to 1 (got 0)"),
    Case("epochs-negative", ("sweep", "run", MLP, "train.epochs=-3"),
         "train.epochs: Input should be greater than or equal to 1 (got -3)"),
    Case("trials-zero", ("sweep", "run", MLP, "search.trials=0"),
         "search.trials: Input should be greater than or equal to 1"),
    Case("concurrency-zero", ("sweep", "run", MLP, "search.concurrency=0"),
         "search.concurrency: Input should be greater than or equal to 1"),
    Case("inverted-range", ("sweep", "run", MLP, "search.space.lr={loguniform: [0.1, 0.001]}"),
         "search.space.lr.loguniform: low (0.1) must be below high (0.001); write [low, high]"),
    Case("loguniform-low-not-positive",
         ("sweep", "run", MLP, "search.space.lr={loguniform: [0, 0.1]}"),
         "search.space.lr.loguniform: low (0.0) must be > 0 on a log scale"),
    Case("choice-not-valid-for-its-knob",
         ("sweep", "run", MLP, "search.space.activation={choice: [relu, swish]}"),
         "search.space.activation: 'swish' is not a valid model.activation"),
    Case("space-unknown-parameter", ("sweep", "run", MLP, "search.space.conv_blocks={int: [1, 3]}"),
         "search.space: unknown parameter 'conv_blocks'; searchable: model.activation"),
    Case("unknown-model-family", ("sweep", "run", MLP, "model.family=resnet"),
         "model.family: 'resnet': unknown family; allowed: mlp, cnn, rnn, gan, transfer"),
    Case("unknown-dataset", ("sweep", "run", MLP, "data.dataset=imagenet"),
         "data.dataset: Input should be 'digits', 'series'"),
    Case("family-unfit-for-dataset", ("sweep", "run", "jobs/cnn_digits.yaml",
                                      "data.dataset=series"),
         "model.family 'cnn' cannot train on dataset 'series'"),
    Case("unknown-metric", ("sweep", "run", MLP, "search.metric=accuracy"),
         "search.metric: metric 'accuracy' is unknown for a classification task; allowed: "
         "val_accuracy"),
    Case("metric-unfit-for-task", ("sweep", "run", MLP, "search.metric=val_rmse"),
         "metric 'val_rmse' does not fit a classification task"),
    Case("unknown-scheduler", ("sweep", "run", MLP, "search.scheduler.type=bohb"),
         "search.scheduler.type: Input should be 'asha', 'fifo', 'hyperband', 'median', "
         "'pareto', 'pbt' or 'pb2'"),
    Case("unknown-sampler", ("sweep", "run", MLP, "search.sampler=grid"),
         "search.sampler: Input should be 'tpe', 'random', 'gp', 'cmaes', 'nsga2' or 'qmc' "
         "(got 'grid')"),
    Case("reserved-alias", ("sweep", "run", MLP, "register.alias=latest"),
         "register.alias: alias 'latest' is not allowed"),
    Case("table-without-target", ("sweep", "run", MLP, "data.dataset=table",
                                  "data.path=jobs/data/wine.csv"),
         "dataset 'table' needs data.target, the name of the target column"),
    # Overrides.
    Case("override-without-equals", ("sweep", "run", MLP, "train.epochs"),
         "override 'train.epochs': write key=value, e.g. train.epochs=3"),
    Case("override-unknown-key", ("sweep", "run", MLP, "train.epoch=3"),
         "train: unknown field 'epoch' (did you mean 'epochs'?)"),
    Case("override-under-a-value", ("sweep", "run", MLP, "train.epochs.max=3"),
         "override 'train.epochs.max=3': epochs is a value, not a section"),
    Case("override-quoting-markup", ("sweep", "run", MLP, "name='[/red]'"),
         "name: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' "
         "(got '[/red]')"),
    # Data files, checked by the driver before anything is written.
    Case("missing-data-file", ("sweep", "run", TABLE, "data.path={tmp}/wine.csv"),
         "data.path '{tmp}/wine.csv': no such file; expected a .csv or .parquet file"),
    Case("csv-without-target-column", ("sweep", "run", TABLE, "data.path={tmp}/wine.csv"),
         "data.target 'cultivar' is not a column; columns: alcohol, cultivr; did you mean "
         "'cultivr'?", _file("wine.csv", "alcohol,cultivr\n13.2,a\n12.1,b\n14.0,a\n11.9,b\n")),
    Case("metric-unfit-for-the-tables-target",
         ("sweep", "run", TABLE, "data.path={tmp}/prices.csv", "data.target=price"),
         "search.metric: metric 'val_f1' does not fit a regression task",
         _file("prices.csv", "rooms,price\n" + "".join(f"{i % 5},{i * 1.5}\n"
                                                         for i in range(20)))),
    # Transfer backbones: the registry and checkpoint files.
    Case("backbone-not-in-registry", ("sweep", "run", TRANSFER, "search.space={}",
                                      "model.backbone=models:/no-such-backbone@champion"),
         "model.backbone: models:/no-such-backbone@champion is not in the registry"),
    Case("backbone-file-missing", ("sweep", "run", TRANSFER, "search.space={}",
                                   "model.backbone={tmp}/backbone.pt"),
         "is not scratch, models:/NAME@ALIAS, efficientnet-lite:lite0, torchvision:ARCH nor an "
         "existing checkpoint file"),
    Case("checkpoint-random-bytes", ("sweep", "run", TRANSFER, "search.space={}",
                                     "model.backbone={tmp}/backbone.pt"),
         "model.backbone: {tmp}/backbone.pt is corrupt, truncated or not a torch checkpoint",
         _random_bytes_checkpoint),
    Case("checkpoint-truncated", ("sweep", "run", TRANSFER, "search.space={}",
                                  "model.backbone={tmp}/backbone.pt"),
         "model.backbone: {tmp}/backbone.pt is corrupt, truncated or not a torch checkpoint",
         _truncated_checkpoint),
    Case("checkpoint-garbled-inside", ("sweep", "run", TRANSFER, "search.space={}",
                                       "model.backbone={tmp}/backbone.pt"),
         "model.backbone: {tmp}/backbone.pt is corrupt or truncated (", _garbled_checkpoint),
    Case("checkpoint-with-code-objects", ("sweep", "run", TRANSFER, "search.space={}",
                                          "model.backbone={tmp}/backbone.pt"),
         "holds argparse.Namespace objects, which a safe load (weights_only=True) refuses",
         _unsafe_checkpoint),
    Case("checkpoint-not-a-state-dict", ("sweep", "run", TRANSFER, "search.space={}",
                                         "model.backbone={tmp}/backbone.pt"),
         "model.backbone: {tmp}/backbone.pt holds a list, not a state dict", _not_a_state_dict),
    # Ids of things that do not exist.
    Case("sweep-show-no-catalog", ("sweep", "show", "deadbeef"), "no sweep 'deadbeef'"),
    Case("sweep-show-unknown-id", ("sweep", "show", "deadbeef"), "no sweep 'deadbeef'",
         _empty_catalog),
    Case("model-alias-unknown-model", ("model", "alias", "no-such-model", "1", "champion"),
         "no registered model 'no-such-model': there is no MLflow store"),
    Case("model-alias-reserved-name", ("model", "alias", "digits-cnn", "1", "v2"),
         "alias 'v2' is not allowed"),
    Case("job-logs-unknown-job", ("job", "logs", "deadbeef"),
         "no job 'deadbeef': no job was submitted", _closed_port, SHARED_STORES),
    # Clusters.
    Case("job-submit-without-shared-stores",
         ("job", "submit", MLP, "--cluster", "http://127.0.0.1:{closed}"),
         "a cluster job needs shared stores; set MLFLOW_TRACKING_URI and TRIALFORGE_DB",
         _closed_port),
    Case("job-submit-unreachable-cluster",
         ("job", "submit", MLP, "--cluster", "http://127.0.0.1:{closed}"),
         "cannot reach the Ray cluster at http://127.0.0.1:{closed}: is it running",
         _closed_port, SHARED_STORES),
    Case("job-submit-cluster-not-a-url", ("job", "submit", MLP, "--cluster", "127.0.0.1:8265"),
         "--cluster '127.0.0.1:8265' is not the cluster's dashboard URL: write "
         "http://HEAD:8265", _closed_port, SHARED_STORES),
    Case("job-submit-wrong-token",
         ("job", "submit", MLP, "--cluster", "http://127.0.0.1:{refusing}"),
         "refused the token (RAY_AUTH_TOKEN): set RAY_AUTH_TOKEN",
         _token_refusing_cluster, {**SHARED_STORES, "RAY_AUTH_TOKEN": "not-the-token"}),
    Case("job-submit-bad-job-env",
         ("job", "submit", MLP, "--cluster", "http://127.0.0.1:{closed}", "--job-env", "=x"),
         "--job-env takes KEY=VALUE, KEY a variable name (got '=x')", _closed_port, SHARED_STORES),
    Case("job-submit-spec-outside-folder",
         ("job", "submit", "{tmp}/spec.yaml", "--cluster", "http://127.0.0.1:{closed}"),
         "is outside {repo}, the folder sent to the cluster: submit from a folder that holds it",
         lambda tmp, stack: {**_file("spec.yaml", "name: x\n")(tmp, stack),
                             **_closed_port(tmp, stack)},
         SHARED_STORES),
    # The home folder and the machine.
    Case("home-is-a-file", ("sweep", "run", MLP, "search.trials=1", "train.epochs=1"),
         f"trialforge home {{tmp}}/home is a file, not a folder; {HOME_FIX}", _plain_file),
    Case("home-unwritable", ("sweep", "run", MLP, "search.trials=1", "train.epochs=1"),
         HOME_FIX, _unwritable_home, home="{unwritable}"),
    # Examples.
    Case("init-unknown-example", ("init", "{tmp}/project", "--example", "cnn"),
         "--example: no example 'cnn'; choose one of cnn_digits, cnn_pbt, gan_digits"),
    Case("init-over-existing-files", ("init", "{tmp}/project"),
         "{tmp}/project/jobs/cnn_digits.yaml already exists: choose another folder",
         _file("project/jobs/cnn_digits.yaml", "name: mine\n")),
    Case("dashboard-port-in-use", ("dashboard", "--port", "{taken}"),
         "cannot serve on 127.0.0.1:{taken} (Address already in use): choose another --port",
         _port_in_use),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_bad_input_is_one_clear_line_and_writes_nothing(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as stack:
        values = {"tmp": str(tmp_path), "repo": str(REPO),
                  **(case.setup or _none)(tmp_path, stack)}
        before = _files(tmp_path)
        done = run_cli(*[_fill(arg, values) for arg in case.args],
                       home=Path(_fill(case.home, values)),
                       env={key: _fill(value, values) for key, value in case.env.items()},
                       timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == case.exit_code, output
    assert "Traceback" not in output, output
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert _fill(case.message, values) in errors[0], errors[0]
    assert done.stderr.strip().splitlines()[-1] == errors[0], "the error is the last word"
    assert "error:" not in done.stdout
    assert _files(tmp_path) == before, "a rejected input must write nothing"
    assert_nothing_half_written(tmp_path)


def _fill(text: str, values: dict[str, str]) -> str:
    """`text` with each `{name}` of `values` filled in (other braces are the spec's own)."""
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def _files(root: Path) -> set[str]:
    """Every path under `root`, but sqlite's transient -wal/-shm files (a read makes them)."""
    return {str(path.relative_to(root)) for path in root.rglob("*")
            if not path.name.endswith(("-wal", "-shm", "-journal"))}


def assert_nothing_half_written(root: Path) -> None:
    """No catalog sweep left `running` and no MLflow run left RUNNING in any store under
    `root` (the catalog's and MLflow's sqlite files, read with sqlite3 itself)."""
    for database in root.rglob("*.db"):
        with sqlite3.connect(database) as connection:
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "trialforge_sweeps" in tables:
                running = connection.execute(
                    "SELECT id FROM trialforge_sweeps WHERE state = 'running'").fetchall()
                assert not running, f"{database}: sweeps left running: {running}"
            if "runs" in tables:
                running = connection.execute(
                    "SELECT run_uuid FROM runs WHERE status = 'RUNNING'").fetchall()
                assert not running, f"{database}: MLflow runs left RUNNING: {running}"
        connection.close()
