"""The MLflow Model Registry: register a sweep's best model under an alias, and load it back.

A registered model is its state dict and the JSON that rebuilds it (`model_config`: the
spec, the shapes, the preprocessing fitted on the training split), nothing pickled. MLflow
serves it as a pyfunc that takes raw input (`registry.pyfunc`); `load_model` returns the real
`nn.Module` class (to fine-tune it or cut it for transfer), its preprocessing attached.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trialforge.data.preprocessing import ArrayInputs, Preprocessing
from trialforge.errors import NotFoundError
from trialforge.home import resolve_home
from trialforge.models import build_model
from trialforge.spec import SweepSpec
from trialforge.train.contract import CHECKPOINT_FILE, TrialCheckpoint, load_checkpoint

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


def best_checkpoint(tracking_uri: str, trial_run_id: str) -> TrialCheckpoint:
    """The best checkpoint a trial's MLflow run keeps, loaded with `weights_only=True`."""
    from mlflow.tracking import MlflowClient

    from trialforge.tracking.tags import BEST_CHECKPOINT_DIR

    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="trialforge-checkpoint-") as tmp:
        return load_checkpoint(Path(client.download_artifacts(
            trial_run_id, f"{BEST_CHECKPOINT_DIR}/{CHECKPOINT_FILE}", tmp)))


def register_best_model(
    *,
    tracking_uri: str,
    sweep_run_id: str,
    trial_run_id: str,
    state: TrialCheckpoint,
    spec: SweepSpec,
    value: float,
    sweep_id: str,
    test_value: float | None = None,
    tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Register `state`, the best checkpoint of `trial_run_id`, as a new version of
    `spec.model_name`.

    The model is stored with the sweep's parent run; the version's tags name the trial run,
    the sweep, the metric, the champion's test score (`data.test_fraction`) and `tags` (its
    confirmed mean and interval), so every version leads back to what produced it. Only
    explicit clients are used: MLflow's fluent API would set process-wide URIs (and the
    MLFLOW_TRACKING_URI variable) that a second sweep in the same process would then
    inherit.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    metric = spec.search.objective
    with tempfile.TemporaryDirectory(prefix="trialforge-register-") as tmp:
        config = model_config(spec, state)
        state_dict_path = Path(tmp) / STATE_DICT_FILE
        torch.save(rebuild_model(config, state["model"]).state_dict(), state_dict_path)
        model_dir = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            str(model_dir),
            python_model=str(Path(__file__).with_name("serving.py")),
            artifacts={"state_dict": str(state_dict_path)},
            model_config=config,
            signature=_signature(Preprocessing.model_validate(config["preprocessing"])),
            # Given explicitly: inferring them costs ~8 s per model. The environment also
            # needs trialforge itself (serve with --env-manager local where it is installed).
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy", "pandas",
                              "pydantic", "pillow"],
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
            "trialforge.epoch": str(config["epoch"]),
            **({"trialforge.test_value": f"{test_value:.6g}"} if test_value is not None else {}),
            **(tags or {}),
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
    metadata: dict[str, Any]  # its `model_config`
    weights: dict[str, torch.Tensor]

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.model_validate(self.metadata["preprocessing"])

    def module(self) -> nn.Module:
        """The model, rebuilt from its spec, weights loaded, in eval mode; its raw-input
        `preprocessing` attached (`model.preprocessing.transform(frame)`, `.answers(...)`)."""
        model = rebuild_model(self.metadata, self.weights)
        model.preprocessing = self.preprocessing  # type: ignore[assignment]
        return model


def load_model(model_uri: str, tracking_uri: str | None = None) -> nn.Module:
    """Load `models:/NAME@ALIAS` or `models:/NAME/VERSION` as a ready `nn.Module` (eval mode).

    The module is rebuilt from the spec stored with it, and its weights load with
    `weights_only=True`; `model.preprocessing` turns raw input into its batches and its
    outputs into answers. `tracking_uri` defaults to the home's store (or
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
        pyfunc = Model.load(str(local)).flavors.get("python_function", {})
        metadata: dict[str, Any] = pyfunc.get("config") or {}  # its `model_config`
        if "trialforge_spec" not in metadata:
            raise NotFoundError(f"{model_uri} was not registered by trialforge (no spec)")
        weights = torch.load(local / "artifacts" / STATE_DICT_FILE, map_location="cpu",
                             weights_only=True)
    return LoadedVersion(name, str(version.version), version.run_id,
                         SweepSpec.model_validate(metadata["trialforge_spec"]), metadata, weights)


def model_config(spec: SweepSpec, state: TrialCheckpoint) -> dict[str, Any]:
    """What rebuilds and serves the model of checkpoint `state` (JSON): the spec, its shapes
    and its preprocessing (raw numbers in columns `x0...` when the data had none)."""
    input_shape = [int(size) for size in state["input_shape"]]
    preprocessing = state.get("preprocessing") or Preprocessing(
        inputs=ArrayInputs.named("x", tuple(state.get("example_shape", input_shape))),
        task=spec.task or "classification").model_dump()
    return {"trialforge_spec": spec.to_dict(), "input_shape": input_shape,
            "num_classes": int(state["num_classes"]), "model_args": state.get("model_args", {}),
            "epoch": int(state["epoch"]), "preprocessing": preprocessing}


def rebuild_model(config: dict[str, Any], weights: dict[str, Any]) -> nn.Module:
    """The model `config` (`model_config`) describes, with `weights`, in eval mode."""
    spec = SweepSpec.model_validate(config["trialforge_spec"])
    knobs = spec.model.model_dump(exclude={"family"})
    model = build_model(spec.model.family, knobs, tuple(config["input_shape"]),
                        int(config["num_classes"]), **config.get("model_args", {}))
    model.load_state_dict(weights)
    return model.eval()


def _signature(preprocessing: Preprocessing) -> Any:
    """The pyfunc's signature: the raw input's columns by name, the answers' columns."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = preprocessing.output_schema()
    return ModelSignature(
        inputs=Schema([ColSpec(kind, name) for name, kind in
                       preprocessing.inputs.column_types()]),
        outputs=Schema([ColSpec(kind, name) for name, kind in outputs]) if outputs else None)
