"""Transfer learning: a pretrained backbone, a new head, and which layers may still learn.

A backbone comes from the MLflow Model Registry (a trialforge model: its `features` part),
from a checkpoint file of this spec's CNN, or from torchvision (weights from the local torch
hub cache: nothing is downloaded). The sweep's driver resolves each source once
(`registry.backbones`); a trial gets the architecture (JSON) and the weights (tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

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


class ChannelAdapter(nn.Module):
    """Repeat a grayscale image's channel for a backbone that expects colour."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x


def backbone_features(
    architecture: dict[str, Any] | None, input_shape: tuple[int, ...], cnn_knobs: dict[str, Any]
) -> nn.Module:
    """An untrained feature extractor of `architecture` (None: the spec's own CNN)."""
    if architecture is None:
        return cnn(input_shape=input_shape, num_classes=1, **cnn_knobs).features  # type: ignore[return-value]
    if architecture["kind"] == "torchvision":
        import torchvision

        net = torchvision.models.get_model(architecture["arch"], weights=None)
        _drop_classifier(net)
        return nn.Sequential(ChannelAdapter(3), net)
    from trialforge.models import build_model

    model = build_model(architecture["family"], architecture["knobs"],
                        tuple(architecture["input_shape"]), architecture["num_classes"],
                        **architecture.get("model_args", {}))
    return model.features  # type: ignore[return-value]


def _drop_classifier(net: nn.Module) -> None:
    for name in ("fc", "classifier", "heads", "head"):
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
        features.load_state_dict(backbone_weights)
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
