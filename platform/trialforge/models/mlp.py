"""Multi-layer perceptron: Linear -> [BatchNorm] -> activation -> [Dropout], `depth` times."""

from __future__ import annotations

import math

from torch import nn

from trialforge.models.layers import FeaturesAndHead, init_weights
from trialforge.models.layers import activation as make_activation


def mlp(
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    depth: int = 2,
    width: int = 128,
    activation: str = "relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
    init: str = "default",
) -> nn.Module:
    """An MLP classifier over flattened inputs of `input_shape`."""
    layers: list[nn.Module] = [nn.Flatten()]
    in_features = math.prod(input_shape)
    for _ in range(depth):
        layers.append(nn.Linear(in_features, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = width
    model = FeaturesAndHead(nn.Sequential(*layers), nn.Linear(in_features, num_classes))
    init_weights(model, init, activation)
    return model

