"""A spec's space becomes Optuna distributions with the same bounds and names."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from trialforge import parse_spec
from trialforge.search.space import to_optuna


def test_each_kind_maps_to_its_optuna_distribution() -> None:
    spec = parse_spec({"search": {"space": {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "dropout": {"uniform": [0.0, 0.6]},
        "conv_blocks": {"int": [1, 3]},
        "batchnorm": {"choice": [True, False]},
        "activation": {"choice": ["relu", "tanh"]},
    }}})
    space = to_optuna(spec.search.space)
    assert space == {
        "train.lr": FloatDistribution(1e-4, 1e-1, log=True),
        "model.dropout": FloatDistribution(0.0, 0.6),
        "model.conv_blocks": IntDistribution(1, 3),
        "model.batchnorm": CategoricalDistribution([True, False]),
        "model.activation": CategoricalDistribution(["relu", "tanh"]),
    }


def test_an_empty_space_is_empty() -> None:
    assert to_optuna(parse_spec({}).search.space) == {}
