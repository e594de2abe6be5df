"""DCGAN-style generator and discriminator for small images (8x8 digits up to 32x32 colour).

The generator maps noise to a small seed feature map (2x2 for square powers of two) and
doubles it with transposed convolutions up to the image size; a Sigmoid puts pixels in [0, 1]
like the datasets. The discriminator mirrors it with strided convolutions down to one logit.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trialforge.models.layers import activation as make_activation

_MAX_WIDTH_FACTOR = 8  # DCGAN caps the widest layer at 8x the base channels


def generator(
    *,
    image_shape: tuple[int, ...],
    latent_dim: int,
    channels: int = 32,
    activation: str = "relu",
    dropout: float = 0.0,
    batchnorm: bool = True,
) -> nn.Module:
    """Noise (N, latent_dim) -> images (N, *image_shape) in [0, 1].

    Linear to the seed map, then per step ConvTranspose2d (x2) -> [BatchNorm] -> activation
    -> [Dropout], channels halving towards `channels`; a 3x3 conv and Sigmoid make the image.
    """
    out_channels, height, width = _check_image(image_shape)
    steps = upsampling_steps(height, width)
    seed_h, seed_w = height >> steps, width >> steps
    width_now = channels * _width_factor(steps)
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, width_now * seed_h * seed_w, bias=not batchnorm),
        nn.Unflatten(1, (width_now, seed_h, seed_w)),
        *_post_conv(width_now, activation, dropout, batchnorm),
    ]
    for step in reversed(range(steps)):
        width_next = channels * _width_factor(step)
        layers += [
            nn.ConvTranspose2d(width_now, width_next, 4, stride=2, padding=1, bias=not batchnorm),
            *_post_conv(width_next, activation, dropout, batchnorm),
        ]
        width_now = width_next
    layers += [nn.Conv2d(width_now, out_channels, 3, padding=1), nn.Sigmoid()]
    return _dcgan_init(nn.Sequential(*layers))


def discriminator(
    *,
    image_shape: tuple[int, ...],
    channels: int = 32,
    activation: str = "leaky_relu",
    dropout: float = 0.0,
    batchnorm: bool = False,
) -> nn.Module:
    """Images (N, *image_shape) -> one real/fake logit each, shape (N, 1).

    Per step a stride-2 4x4 conv -> [BatchNorm] -> activation -> [Dropout], channels
    doubling from `channels`; the first conv has no BatchNorm (as in DCGAN: normalising the
    raw pixels destabilises training). A linear layer reads the final map.
    """
    in_channels, height, width = _check_image(image_shape)
    steps = upsampling_steps(height, width)
    width_now = channels
    if steps == 0:  # an odd-sized image: one plain conv, no downsampling
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1),
                                   *_post_conv(channels, activation, dropout, False)]
    else:
        layers = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1),
                  *_post_conv(channels, activation, dropout, False)]
    for step in range(1, steps):
        width_next = channels * _width_factor(step)
        layers += [
            nn.Conv2d(width_now, width_next, 4, stride=2, padding=1, bias=not batchnorm),
            *_post_conv(width_next, activation, dropout, batchnorm),
        ]
        width_now = width_next
    layers += [nn.Flatten(), nn.Linear(width_now * (height >> steps) * (width >> steps), 1)]
    return _dcgan_init(nn.Sequential(*layers))


def build_gan(
    config_knobs: dict[str, Any], image_shape: tuple[int, ...]
) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator from a GAN config's fields (optimizer knobs are ignored)."""
    shape = tuple(image_shape)
    gen = generator(
        image_shape=shape,
        latent_dim=int(config_knobs["latent_dim"]),
        channels=int(config_knobs["channels"]),
        activation=str(config_knobs["g_activation"]),
        dropout=float(config_knobs["g_dropout"]),
        batchnorm=bool(config_knobs["g_batchnorm"]),
    )
    disc = discriminator(
        image_shape=shape,
        channels=int(config_knobs["channels"]),
        activation=str(config_knobs["d_activation"]),
        dropout=float(config_knobs["d_dropout"]),
        batchnorm=bool(config_knobs["d_batchnorm"]),
    )
    return gen, disc


def gan_generator(
    *, input_shape: tuple[int, ...], num_classes: int = 0, **knobs: Any
) -> nn.Module:
    """The generator alone, with the builder signature the model table and registry use.

    `num_classes` is ignored (a generator has no classes); `knobs` are a GAN config's fields.
    """
    del num_classes
    return build_gan(knobs, input_shape)[0]


def upsampling_steps(height: int, width: int) -> int:
    """How many times both sides halve evenly before the smaller one reaches 2 (8x8: 2)."""
    steps = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > 2:
        height, width, steps = height // 2, width // 2, steps + 1
    return steps


def _check_image(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(image_shape) != 3:
        raise ValueError(f"a GAN needs image shapes (channels, height, width), got {image_shape}")
    channels, height, width = (int(side) for side in image_shape)
    return channels, height, width


def _width_factor(step: int) -> int:
    return int(min(2**step, _MAX_WIDTH_FACTOR))


def _post_conv(width: int, activation: str, dropout: float, batchnorm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.BatchNorm2d(width)] if batchnorm else []
    layers.append(make_activation(activation))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def _dcgan_init(model: nn.Sequential) -> nn.Sequential:
    """DCGAN's N(0, 0.02) weights: small enough that neither net saturates at the start."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return model
