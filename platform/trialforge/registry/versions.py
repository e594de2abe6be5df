"""The MLflow Model Registry: register a sweep's best model under an alias, and load it back.

A registered model holds two forms, neither of them a pickle: MLflow's `pt2` (torch.export)
for `mlflow.pyfunc` serving, and the state dict plus the spec that rebuilds the real
`nn.Module` class, which `load_model` returns (so it can be fine-tuned or cut for transfer).
"""

from __future__ import annotations

import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trialforge.errors import NotFoundError
from trialforge.home import resolve_home
from trialforge.models import build_model
from trialforge.spec import SweepSpec
from trialforge.train.contract import CHECKPOINT_FILE, load_checkpoint

STATE_DICT_FILE = "state_dict.pt"
MODEL_DIR = "model"  # in the sweep run's artifacts
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


def warm_up_export() -> threading.Thread:
    """Start paying torch.export's one-time set-up (~1.5 s a process) on a thread, while the
    trials train, so `register_best_model` does not pay it at the sweep's end. Join the
    thread before registering: torch.export is not safe to run on two threads at once."""

    def export_once() -> None:
        torch.export.export(nn.Linear(1, 1), (torch.zeros(1, 1),))

    thread = threading.Thread(target=export_once, daemon=True, name="export-warm-up")
    thread.start()
    return thread


def register_best_model(
    *,
    tracking_uri: str,
    sweep_run_id: str,
    trial_run_id: str,
    spec: SweepSpec,
    value: float,
    sweep_id: str,
) -> RegisteredVersion:
    """Register the best checkpoint of `trial_run_id` as a new version of `spec.model_name`.

    The model is stored with the sweep's parent run; the version's tags name the trial run,
    the sweep and the metric, so every version leads back to what produced it. Only explicit
    clients are used: MLflow's fluent API would set process-wide URIs (and the
    MLFLOW_TRACKING_URI variable) that a second sweep in the same process would then inherit.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
    from mlflow.tracking import MlflowClient

    from trialforge.tracking.tags import BEST_CHECKPOINT_DIR

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    metric = spec.search.objective
    with tempfile.TemporaryDirectory(prefix="trialforge-register-") as tmp:
        local = client.download_artifacts(
            trial_run_id, f"{BEST_CHECKPOINT_DIR}/{CHECKPOINT_FILE}", tmp
        )
        state = load_checkpoint(Path(local))
        model_args = state.get("model_args", {})
        model = _rebuild(spec, tuple(state["input_shape"]), state["num_classes"], state["model"],
                         model_args)
        dtype = getattr(torch, state.get("input_dtype", "float32"))
        state_dict_path = Path(tmp) / STATE_DICT_FILE
        torch.save(model.state_dict(), state_dict_path)
        model_dir = Path(tmp) / "model"
        mlflow.pytorch.save_model(
            model,
            str(model_dir),
            serialization_format="pt2",
            # What the model takes: images, vectors, tokens, or a generator's noise.
            input_example=torch.zeros(
                (2, *state.get("example_shape", state["input_shape"])), dtype=dtype
            ).numpy(),
            # Given explicitly: inferring them costs ~8 s per model.
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy"],
            extra_files=[str(state_dict_path)],
            metadata={
                "trialforge_spec": spec.to_dict(),
                "input_shape": list(state["input_shape"]),
                "num_classes": int(state["num_classes"]),
                "model_args": model_args,
            },
        )
        client.log_artifacts(sweep_run_id, str(model_dir), MODEL_DIR)
    try:
        client.create_registered_model(spec.model_name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    version = client.create_model_version(
        spec.model_name,
        source=f"{client.get_run(sweep_run_id).info.artifact_uri}/{MODEL_DIR}",
        run_id=sweep_run_id,
        tags={
            "trialforge.sweep_id": sweep_id,
            "trialforge.trial_run_id": trial_run_id,
            "trialforge.metric": metric,
            "trialforge.value": f"{value:.6g}",
            "trialforge.epoch": str(state["epoch"]),
        },
        description=f"Best trial of sweep {sweep_id}: {metric} = {value:.4f}",
    )
    client.set_registered_model_alias(spec.model_name, spec.register.alias, version.version)
    return RegisteredVersion(spec.model_name, str(version.version), spec.register.alias)


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version as trialforge stored it: the spec, the shapes and the weights."""

    name: str
    version: str
    run_id: str | None
    spec: SweepSpec
    metadata: dict[str, Any]
    weights: dict[str, torch.Tensor]

    def module(self) -> nn.Module:
        """The model, rebuilt from its spec, weights loaded, in eval mode."""
        return _rebuild(self.spec, tuple(self.metadata["input_shape"]),
                        int(self.metadata["num_classes"]), self.weights,
                        self.metadata.get("model_args", {}))


def load_model(model_uri: str, tracking_uri: str | None = None) -> nn.Module:
    """Load `models:/NAME@ALIAS` or `models:/NAME/VERSION` as a ready `nn.Module` (eval mode).

    The module is rebuilt from the spec stored with it, and its weights load with
    `weights_only=True`. `tracking_uri` defaults to the home's store (or
    `MLFLOW_TRACKING_URI`), like the CLI's.
    """
    return load_version(model_uri, tracking_uri).module()


def load_version(model_uri: str, tracking_uri: str | None = None) -> LoadedVersion:
    """Resolve a registry URI (an alias to its version now) and read what trialforge stored."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    match = _MODELS_URI.match(model_uri)
    if not match:
        raise NotFoundError(
            f"not a registry URI: {model_uri!r}; write models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    tracking_uri = tracking_uri or resolve_home().tracking_uri
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    name, alias = match["name"], match["alias"]
    try:
        version = (
            client.get_model_version_by_alias(name, alias) if alias
            else client.get_model_version(name, match["version"])
        )
        download_uri = client.get_model_version_download_uri(name, version.version)
    except MlflowException as exc:
        raise NotFoundError(f"{model_uri} is not in the registry: {exc.message}") from None
    with tempfile.TemporaryDirectory(prefix="trialforge-load-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=download_uri, dst_path=tmp, tracking_uri=client.tracking_uri
            )
        )
        metadata: dict[str, Any] = Model.load(str(local)).metadata or {}
        if "trialforge_spec" not in metadata:
            raise NotFoundError(f"{model_uri} was not registered by trialforge (no spec)")
        weights = torch.load(
            local / "extra_files" / STATE_DICT_FILE, map_location="cpu", weights_only=True
        )
    return LoadedVersion(name, str(version.version), version.run_id,
                         SweepSpec.model_validate(metadata["trialforge_spec"]), metadata, weights)


def _rebuild(
    spec: SweepSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    weights: dict[str, Any],
    model_args: dict[str, Any],
) -> nn.Module:
    knobs = spec.model.model_dump(exclude={"family"})
    model = build_model(spec.model.family, knobs, tuple(input_shape), num_classes, **model_args)
    model.load_state_dict(weights)
    return model.eval()
