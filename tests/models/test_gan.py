"""The GAN's two networks: shapes for every image size, and knobs that change them."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from trialforge.models.gan import (
    build_gan,
    discriminator,
    gan_generator,
    generator,
    upsampling_steps,
)

SHAPES = [(1, 8, 8), (1, 16, 16), (3, 32, 32)]
DEFAULTS: dict[str, Any] = {
    "latent_dim": 16, "channels": 8, "g_lr": 2e-4, "d_lr": 2e-4, "g_beta1": 0.5,
    "d_beta1": 0.5, "g_beta2": 0.999, "d_beta2": 0.999, "g_dropout": 0.0, "d_dropout": 0.0,
    "g_batchnorm": True, "d_batchnorm": False, "g_activation": "relu",
    "d_activation": "leaky_relu",
}


def _layer_types(model: nn.Module) -> set[type[nn.Module]]:
    return {type(layer) for layer in model.modules()}


@pytest.mark.parametrize("shape", SHAPES)
def test_generator_makes_images_in_unit_range_and_discriminator_one_logit(
    shape: tuple[int, int, int],
) -> None:
    torch.manual_seed(0)
    gen, disc = build_gan(DEFAULTS, shape)
    images = gen(torch.randn(5, DEFAULTS["latent_dim"]))
    assert images.shape == (5, *shape)
    assert 0.0 <= float(images.detach().min()) <= float(images.detach().max()) <= 1.0, "Sigmoid"
    logits = disc(images)
    assert logits.shape == (5, 1)
    logits.sum().backward()
    assert all(p.grad is not None for p in gen.parameters()), "gradients reach the generator"


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 7, 7), (3, 12, 16)])
def test_other_sizes_work_too(shape: tuple[int, int, int]) -> None:
    gen, disc = build_gan(DEFAULTS, shape)
    assert disc(gen(torch.randn(2, DEFAULTS["latent_dim"]))).shape == (2, 1)


def test_upsampling_goes_from_a_small_seed() -> None:
    assert [upsampling_steps(side, side) for side in (8, 16, 32)] == [2, 3, 4]  # 2x2 seeds
    assert upsampling_steps(28, 28) == 2  # a 7x7 seed
    assert upsampling_steps(7, 7) == 0
    gen = generator(image_shape=(1, 16, 16), latent_dim=4)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in gen.modules()) == 3


def test_dropout_and_batchnorm_knobs_add_layers() -> None:
    plain_g = generator(image_shape=(1, 8, 8), latent_dim=4, batchnorm=False)
    plain_d = discriminator(image_shape=(1, 8, 8), batchnorm=False)
    for model in (plain_g, plain_d):
        assert not _layer_types(model) & {nn.Dropout, nn.BatchNorm2d}
    full_g = generator(image_shape=(1, 8, 8), latent_dim=4, batchnorm=True, dropout=0.3)
    full_d = discriminator(image_shape=(1, 8, 8), batchnorm=True, dropout=0.3)
    for model in (full_g, full_d):
        assert {nn.Dropout, nn.BatchNorm2d} <= _layer_types(model)
    rates = {m.p for m in full_d.modules() if isinstance(m, nn.Dropout)}
    assert rates == {0.3}


@pytest.mark.parametrize(("name", "kind"), [("tanh", nn.Tanh), ("gelu", nn.GELU),
                                            ("leaky_relu", nn.LeakyReLU), ("relu", nn.ReLU)])
def test_activation_knob_picks_the_nonlinearity(name: str, kind: type[nn.Module]) -> None:
    gen = generator(image_shape=(1, 8, 8), latent_dim=4, activation=name)
    disc = discriminator(image_shape=(1, 8, 8), activation=name)
    for model in (gen, disc):
        hidden = _layer_types(model) - {nn.Sigmoid}  # the generator's output layer
        assert kind in hidden
        others = {nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ReLU} - {kind}
        assert not hidden & others


def test_g_and_d_knobs_set_each_network_separately() -> None:
    knobs = {**DEFAULTS, "g_activation": "tanh", "d_activation": "gelu", "g_batchnorm": False,
             "d_batchnorm": True, "g_dropout": 0.2, "d_dropout": 0.0}
    gen, disc = build_gan(knobs, (1, 8, 8))
    assert nn.Tanh in _layer_types(gen) and nn.GELU not in _layer_types(gen)
    assert nn.GELU in _layer_types(disc) and nn.Tanh not in _layer_types(disc)
    assert nn.BatchNorm2d not in _layer_types(gen) and nn.Dropout in _layer_types(gen)
    assert nn.BatchNorm2d in _layer_types(disc) and nn.Dropout not in _layer_types(disc)


def test_channels_and_latent_dim_size_the_networks() -> None:
    small = generator(image_shape=(1, 8, 8), latent_dim=4, channels=4)
    large = generator(image_shape=(1, 8, 8), latent_dim=64, channels=16)
    count = [sum(p.numel() for p in model.parameters()) for model in (small, large)]
    assert count[0] < count[1]
    with pytest.raises(RuntimeError):
        small(torch.randn(2, 64))  # expects latent_dim 4


def test_registry_builder_returns_the_generator() -> None:
    gen = gan_generator(input_shape=(1, 8, 8), num_classes=10, **DEFAULTS)
    assert gen(torch.randn(3, DEFAULTS["latent_dim"])).shape == (3, 1, 8, 8)


def test_non_image_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="channels, height, width"):
        build_gan(DEFAULTS, (64,))
