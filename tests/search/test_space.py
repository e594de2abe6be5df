"""A spec's space becomes Optuna distributions with the same bounds and names."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from trialforge import parse_spec
from trialforge.search.space import spec_point, to_optuna


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


def test_the_spec_as_written_is_the_first_point_when_it_fits_the_space() -> None:
    spec = parse_spec({"model": {"dropout": 0.1}, "train": {"lr": 0.001}, "search": {"space": {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "dropout": {"uniform": [0.0, 0.5]},
        "activation": {"choice": ["tanh", "relu"]},
        "conv_blocks": {"int": [1, 3]},
    }}})
    assert spec_point(spec) == {"train.lr": 0.001, "model.dropout": 0.1,
                                "model.activation": "relu", "model.conv_blocks": 2}


def test_no_first_point_when_the_spec_lies_outside_its_space() -> None:
    outside_range = parse_spec({"train": {"lr": 0.5},
                                "search": {"space": {"lr": {"loguniform": [1e-4, 1e-1]}}}})
    outside_choices = parse_spec({"search": {"space": {"activation": {"choice": ["tanh"]}}}})
    bool_is_not_int = parse_spec({"model": {"batchnorm": True},
                                  "search": {"space": {"batchnorm": {"choice": [1, 0]}}}})
    assert spec_point(outside_range) is None
    assert spec_point(outside_choices) is None
    assert spec_point(bool_is_not_int) is None


def test_a_conditional_parameter_is_never_sampled_when_its_condition_is_off() -> None:
    import optuna

    from trialforge.search.space import searcher_space

    spec = parse_spec({"model": {"family": "rnn"}, "search": {"space": {
        "cell": {"choice": ["rnn", "lstm", "gru"]},
        "bidirectional": {"choice": [True, False], "when": {"cell": ["lstm", "gru"]}},
        "lr": {"loguniform": [1e-4, 1e-1]},
    }}})
    define_by_run = searcher_space(spec.search.space)
    assert callable(define_by_run)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    study.optimize(lambda trial: define_by_run(trial) or trial.params["train.lr"], n_trials=30)
    cells = {trial.params["model.cell"] for trial in study.trials}
    assert cells == {"rnn", "lstm", "gru"}
    for trial in study.trials:
        sampled = "model.bidirectional" in trial.params
        assert sampled == (trial.params["model.cell"] != "rnn"), trial.params


def test_without_conditions_the_space_stays_a_fixed_dict() -> None:
    from trialforge.search.space import searcher_space

    spec = parse_spec({"search": {"space": {"lr": {"loguniform": [1e-4, 1e-1]}}}})
    assert searcher_space(spec.search.space) == to_optuna(spec.search.space)


def test_the_first_point_leaves_out_parameters_whose_condition_is_off() -> None:
    spec = parse_spec({"model": {"family": "rnn", "cell": "rnn"}, "search": {"space": {
        "cell": {"choice": ["rnn", "lstm"]},
        "bidirectional": {"choice": [True, False], "when": {"cell": "lstm"}},
    }}})
    assert spec_point(spec) == {"model.cell": "rnn"}
