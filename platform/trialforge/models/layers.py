"""The pieces every family shares: activations, weight initialisation, features + head."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}

# The gain torch.nn.init uses for each activation (GELU behaves like ReLU here).
_GAIN_NAME: dict[str, Literal["relu", "leaky_relu", "tanh", "sigmoid"]] = {
    "relu": "relu", "gelu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh",
    "sigmoid": "sigmoid",
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        allowed = ", ".join(_ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; allowed: {allowed}") from None


def init_weights(module: nn.Module, scheme: str, activation_name: str) -> None:
    """Initialise linear and conv weights: `xavier` (Glorot), `he` (Kaiming) or torch's default.

    Xavier keeps the variance of tanh/sigmoid nets stable; He does it for ReLU-like ones:
    both are the standard remedy for vanishing or exploding activations at depth.
    """
    if scheme == "default":
        return
    gain_name = _GAIN_NAME[activation_name]
    for layer in module.modules():
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            continue
        if scheme == "xavier":
            nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(gain_name))
        elif scheme == "he":
            nn.init.kaiming_normal_(layer.weight, nonlinearity=gain_name)
        else:
            raise ValueError(f"unknown init {scheme!r}; allowed: default, xavier, he")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class FeaturesAndHead(nn.Module):
    """A feature extractor followed by a linear head: the split transfer learning cuts at."""

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # type: ignore[no-any-return]
