"""Model builders, found by name in one table; `package.module:function` brings your own.

A builder is a plain function `builder(*, input_shape, num_classes, **knobs) -> nn.Module`.
This module imports no torch itself, so validating a spec stays fast.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]
InputLayout = Literal["image", "vector", "sequence", "tokens", "natural"]

#: Built-in families and where their builders live. A GAN is two networks with a loop of
#: its own (train/gan_loop.py); its builder makes the generator, the model a GAN registers.
BUILTIN_FAMILIES: dict[str, str] = {
    "mlp": "trialforge.models.mlp:mlp",
    "cnn": "trialforge.models.cnn:cnn",
    "rnn": "trialforge.models.rnn:rnn",
    "gan": "trialforge.models.gan:gan_generator",
    "transfer": "trialforge.models.backbones:transfer",
}

#: How each family wants its input; a user's builder gets the dataset's first layout.
INPUT_LAYOUT: dict[str, InputLayout] = {
    "mlp": "vector", "cnn": "image", "rnn": "sequence", "gan": "image", "transfer": "image",
}


def resolve_builder(family: str) -> Builder:
    """The builder function of a family name or a `package.module:function` path."""
    target = BUILTIN_FAMILIES.get(family, family)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"unknown family {family!r}; allowed: {', '.join(BUILTIN_FAMILIES)}, "
            "or 'package.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"cannot import {module_name!r} for family {family!r} ({exc}); "
            "is it installed or on PYTHONPATH?"
        ) from None
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ValueError(f"{module_name!r} has no function {attr!r} (family {family!r})")
    return builder  # type: ignore[no-any-return]


def check_builder(family: str, options: dict[str, Any] | None = None) -> None:
    """Raise `ValueError` unless the builder exists and accepts these keyword arguments."""
    builder = resolve_builder(family)
    try:
        inspect.signature(builder).bind(input_shape=(1,), num_classes=2, **(options or {}))
    except TypeError as exc:
        raise ValueError(
            f"builder {family!r} must accept (*, input_shape, num_classes, **knobs): {exc}"
        ) from None


def build_model(
    family: str,
    knobs: dict[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    **data_args: Any,
) -> nn.Module:
    """Build a model of `family` with its knobs for inputs of `input_shape`; `data_args`
    are what the dataset tells builders (e.g. `vocab_size`)."""
    builder = resolve_builder(family)
    return builder(input_shape=tuple(input_shape), num_classes=num_classes, **knobs, **data_args)


def input_layout(family: str, layouts: tuple[str, ...]) -> InputLayout:
    """The layout `family` gets from a dataset that offers `layouts` (token data stays
    tokens: an RNN embeds them)."""
    if "tokens" in layouts:
        return "tokens"
    wanted = INPUT_LAYOUT.get(family)
    return wanted if wanted is not None else layouts[0]  # type: ignore[return-value]


__all__ = [
    "BUILTIN_FAMILIES",
    "INPUT_LAYOUT",
    "build_model",
    "check_builder",
    "input_layout",
    "resolve_builder",
]
