"""Convolutional network: conv blocks with pooling, then a small fully connected classifier."""

from __future__ import annotations

from torch import nn

from trialforge.models.layers import FeaturesAndHead, init_weights
from trialforge.models.layers import activation as make_activation


def cnn(
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    conv_blocks: int = 2,
    channels: int = 32,
    kernel_size: int = 3,
    pool: str = "max",
    fc_width: int = 64,
    activation: str = "relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
    init: str = "default",
) -> nn.Module:
    """A CNN classifier for images of `input_shape` = (channels, height, width).

    Each block is conv -> [BatchNorm] -> activation -> 2x2 pooling; channels double per block.
    Pooling stops once the feature map is 1 pixel wide, so small images take deep stacks.
    """
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs image inputs (channels, height, width), got {input_shape}")
    if pool not in ("max", "avg"):
        raise ValueError(f"unknown pool {pool!r}; allowed: max, avg")
    in_channels, height, width = input_shape
    layers: list[nn.Module] = []
    for block in range(conv_blocks):
        out_channels = channels * 2**block
        layers.append(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                      bias=not batchnorm)
        )
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(make_activation(activation))
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
            height, width = height // 2, width // 2
        in_channels = out_channels
    layers += [nn.Flatten(), nn.Linear(in_channels * height * width, fc_width),
               make_activation(activation)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    model = FeaturesAndHead(nn.Sequential(*layers), nn.Linear(fc_width, num_classes))
    init_weights(model, init, activation)
    return model
