"""Every builder with every knob: right output shape, and gradients that flow."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from trialforge.models import build_model, resolve_builder
from trialforge.models.layers import init_weights

ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "leaky_relu"]
KNOBS = list(itertools.product(ACTIVATIONS, ["default", "xavier", "he"], [False, True],
                               [0.0, 0.3]))
SHAPES = {"mlp": (64,), "cnn": (1, 8, 8)}


def _forward_backward(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.rand(16, *input_shape)
    y = torch.randint(0, 10, (16,))
    model.train()
    logits = model(x)
    nn.functional.cross_entropy(logits, y).backward()
    return logits


@pytest.mark.parametrize("family", sorted(SHAPES))
@pytest.mark.parametrize(("activation", "init", "batchnorm", "dropout"), KNOBS)
def test_every_knob_combination_trains(
    family: str, activation: str, init: str, batchnorm: bool, dropout: float
) -> None:
    knobs = {"activation": activation, "init": init, "batchnorm": batchnorm, "dropout": dropout}
    model = build_model(family, knobs, SHAPES[family], num_classes=10)
    logits = _forward_backward(model, SHAPES[family])
    assert logits.shape == (16, 10)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    has_bn = any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    has_dropout = any(isinstance(m, nn.Dropout) for m in model.modules())
    assert has_bn == batchnorm
    assert has_dropout == (dropout > 0)


@pytest.mark.parametrize(("depth", "width"), [(1, 16), (3, 32)])
def test_mlp_depth_and_width(depth: int, width: int) -> None:
    model = build_model("mlp", {"depth": depth, "width": width}, (64,), 10)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == depth + 1
    assert [m.out_features for m in linears] == [width] * depth + [10]


@pytest.mark.parametrize(("blocks", "pool"), [(1, "max"), (2, "avg"), (4, "max")])
def test_cnn_blocks_pool_until_one_pixel(blocks: int, pool: str) -> None:
    model = build_model("cnn", {"conv_blocks": blocks, "channels": 4, "pool": pool}, (1, 8, 8), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    pools = [m for m in model.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [c.out_channels for c in convs] == [4 * 2**i for i in range(blocks)]
    assert len(pools) == min(blocks, 3), "8x8 halves three times, then pooling stops"
    assert all(isinstance(p, nn.MaxPool2d if pool == "max" else nn.AvgPool2d) for p in pools)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_init_schemes_change_weight_scale() -> None:
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(400, 400))
    init_weights(layer, "he", "relu")
    he_std = layer[0].weight.std().item()
    init_weights(layer, "xavier", "tanh")
    xavier_std = layer[0].weight.std().item()
    assert he_std == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    assert xavier_std == pytest.approx(5 / 3 * (2 / 800) ** 0.5, rel=0.05)
    assert layer[0].bias.abs().sum().item() == 0


def test_a_dotted_path_brings_your_own_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "their_nets.py").write_text(
        "import torch.nn as nn\n"
        "def linear(*, input_shape, num_classes, bias=True):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes, bias=bias))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model("their_nets:linear", {"bias": False}, (1, 8, 8), 10)
    assert model[1].bias is None
    with pytest.raises(ValueError, match="has no function 'missing'"):
        resolve_builder("their_nets:missing")
