"""The sweep spec: defaults, overrides, the search space, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialforge import SpecError, SweepSpec, load_spec, parse_spec
from trialforge.spec import CNNConfig, LogUniform, MLPConfig, apply_overrides


def test_an_empty_spec_is_a_complete_sweep() -> None:
    spec = parse_spec({})
    assert isinstance(spec.model, CNNConfig)
    assert spec.data.dataset == "digits"
    assert spec.search.metric == "val_accuracy"
    assert spec.search.direction == "max"
    assert spec.search.scheduler.type == "asha"
    assert spec.register.alias == "champion"
    assert spec.model_name == spec.name


def test_mode_follows_the_metric_unless_given() -> None:
    assert parse_spec({"search": {"metric": "val_loss"}}).search.direction == "min"
    assert parse_spec({"search": {"metric": "val_loss", "mode": "max"}}).search.direction == "max"


def test_overrides_parse_values_as_yaml_and_create_sections() -> None:
    raw = {"train": {"epochs": 12}}
    result = apply_overrides(raw, ["train.epochs=3", "model.family=mlp", "search.space.lr="
                                   "{loguniform: [0.001, 0.1]}", "model.batchnorm=true"])
    assert result == {
        "train": {"epochs": 3},
        "model": {"family": "mlp", "batchnorm": True},
        "search": {"space": {"lr": {"loguniform": [0.001, 0.1]}}},
    }
    assert raw == {"train": {"epochs": 12}}, "overrides must not change the input"


def test_space_keys_become_dotted_knob_paths() -> None:
    spec = parse_spec({"search": {"space": {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "model.dropout": {"uniform": [0.0, 0.5]},
        "conv_blocks": {"int": [1, 3]},
        "activation": {"choice": ["relu", "tanh"]},
    }}})
    assert list(spec.search.space) == [
        "train.lr", "model.dropout", "model.conv_blocks", "model.activation"
    ]
    assert isinstance(spec.search.space["train.lr"], LogUniform)


def test_with_params_sets_knobs_and_validates_them() -> None:
    spec = parse_spec({"model": {"family": "mlp"}})
    trial = spec.with_params({"model.depth": 3, "train.lr": 0.01, "model.activation": "gelu"})
    assert isinstance(trial.model, MLPConfig)
    assert (trial.model.depth, trial.train.lr, trial.model.activation) == (3, 0.01, "gelu")
    assert spec.model.depth == 2, "the sweep's own spec is unchanged"
    assert trial.trial_params()["model.depth"] == 3


def test_spec_round_trips_through_yaml(tmp_path: Path) -> None:
    spec = load_spec(Path(__file__).parents[1] / "jobs" / "cnn_digits.yaml")
    path = tmp_path / "again.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path) == spec


BAD_SPECS = [
    # (overrides, words the message must contain)
    (["train.epochs=0"], ["train.epochs", "greater than or equal to 1"]),
    (["train.epochs=many"], ["train.epochs", "valid integer"]),
    (["train.epoch=3"], ["train: unknown field 'epoch'", "did you mean 'epochs'", "allowed:"]),
    (["colour=red"], ["unknown field 'colour'", "allowed:", "search"]),
    (["model.family=transformer"], ["model.family", "unknown family", "mlp, cnn"]),
    (["model.family=mlp", "model.conv_blocks=2"], ["model: unknown field 'conv_blocks'"]),
    (["model.activation=swish"], ["model.activation", "'relu'", "'leaky_relu'"]),
    (["model.init=orthogonal"], ["model.init", "'xavier'", "'he'"]),
    (["model.dropout=1.0"], ["model.dropout", "less than 1"]),
    (["data.dataset=mnist"], ["data.dataset", "'digits'"]),
    (["data.val_fraction=0"], ["data.val_fraction", "greater than 0"]),
    (["train.optimizer=rmsprop"], ["train.optimizer", "'adam'", "'sgd'"]),
    (["train.gpu_fraction=0"], ["train.gpu_fraction", "greater than 0"]),
    (["train.precision=fp8"], ["train.precision", "'bf16'", "'fp16'"]),
    (["train.compile=maybe"], ["train.compile", "valid boolean"]),
    (["train.data_on_device=sometimes"], ["train.data_on_device", "valid boolean"]),
    (["model.family=gan", "train.precision=bf16"],
     ["train.precision 'bf16'", "GAN loop trains in fp32", "train.precision=fp32"]),
    (["train.gpu_fraction=0.5", "train.workers=2"],
     ["train", "gpu_fraction=0.5", "whole GPU", "train.gpu_fraction=1 or train.workers=1"]),
    (["search.metric=f1"], ["search.metric", "metric 'f1' is unknown", "val_accuracy"]),
    (["search.mode=maximize"], ["search.mode", "'min' or 'max'"]),
    (["search.scheduler.type=bohb"], ["search.scheduler.type", "'asha'", "'pbt'", "'pb2'"]),
    (["search.scheduler.type=pbt"], ["search.space", "scheduler 'pbt' mutates", "train.lr"]),
    (["search.scheduler.type=pareto"], ["search: scheduler.type 'pareto' ranks trials on several"]),
    (["search.scheduler.type=pb2", "search.space.lr.loguniform=[0.001,0.1]",
      "search.sampler=gp"], ["search.sampler", "pb2 draws its first population at random"]),
    (["search.scheduler.type=pbt", "search.space.lr.loguniform=[0.001,0.1]",
      "search.metric=[val_accuracy,params]"], ["search.metric", "pbt ranks trials on one"]),
    (["search.scheduler.type=pb2", "search.space.batch_size.choice=[32,64]"],
     ["search.space", "'pb2' mutates float ranges"]),
    (["search.scheduler.quantile_fraction=0.7"], ["search.scheduler.quantile_fraction"]),
    (["search.scheduler.type=pbt", "search.space.lr.loguniform=[0.001,0.1]",
      "search.confirm.top_k=2"], ["search.confirm", "drop search.confirm"]),
    (["search.scheduler.type=pbt", "search.space.lr.loguniform=[0.001,0.1]",
      "search.constraints.params.max=10"], ["search.constraints", "drop search.constraints"]),
    (["search.scheduler.type=pbt", "search.space.lr.loguniform=[0.001,0.1]",
      "search.warm_start=[old]"], ["search.warm_start", "drop search.warm_start"]),
    (["search.scheduler.type=pbt", "search.space.lr.loguniform=[0.001,0.1]",
      "search.space.activation.choice=[relu,tanh]",
      "search.space.dropout={uniform: [0.0, 0.5], when: {activation: relu}}"],
     ["search.space", "drop the space's `when` conditions"]),
    (["search.constraints.params.max=10", "search.constraints.params.min=20"],
     ["search.constraints.params", "min (20.0) is above max (10.0)"]),
    (["search.constraints.params={}"], ["search.constraints.params", "give min, max or both"]),
    (["search.constraints.val_fid.max=3"], ["search.metric", "val_fid", "does not fit"]),
    (["search.scheduler.reduction_factor=1"], ["search.scheduler.reduction_factor"]),
    (["search.trials=0"], ["search.trials"]),
    (["search.space.lr={loguniform: [0.1, 0.01]}"], ["search.space.lr", "must be below high"]),
    (["search.space.lr={loguniform: [0.0, 0.1]}"], ["search.space.lr", "> 0 on a log scale"]),
    (["search.space.lr={loguniform: [-1, 0.1]}"], ["search.space.lr", "> 0 on a log scale"]),
    (["search.space.dropout={uniform: [0.3, 0.3]}"], ["search.space.dropout", "below high"]),
    (["search.space.conv_blocks={int: [3, 1]}"], ["search.space.conv_blocks", "below high"]),
    (["search.space.lr={loguniform: [0.1]}"], ["search.space.lr", "[low, high]"]),
    (["search.space.activation={choice: []}"], ["search.space.activation", "at least 1"]),
    (["search.space.activation={choice: [relu, relu]}"], ["distinct"]),
    (["search.space.activation={choice: [relu, swish]}"],
     ["search.space.activation", "'swish'", "model.activation", "'tanh'"]),
    (["search.space.dropout={uniform: [0.0, 1.5]}"], ["search.space.dropout", "model.dropout"]),
    (["search.space.depth={int: [1, 3]}"], ["unknown parameter 'depth'", "model.conv_blocks"]),
    (["search.space.lr={normal: [0, 1]}"], ["search.space.lr", "loguniform, uniform, int, choice"]),
    (["search.space.lr=0.01"], ["search.space.lr", "loguniform, uniform, int, choice"]),
    (["register.alias=latest"], ["register.alias", "not allowed"]),
    (["name=has space"], ["name", "pattern"]),
    (["model.family=no_such_module:net"], ["model.family", "cannot import 'no_such_module'"]),
    (["model.family=os.path:join"], ["model.family", "must accept"]),
    (["train"], ["override 'train'", "key=value"]),
    # the families, tasks and data of issue 4
    (["model.family=rnn", "model.cell=transformer"], ["model.cell", "'lstm'", "'gru'"]),
    (["data.dataset=series"], ["model.family 'cnn' cannot train on dataset 'series'",
                               "vector, sequence"]),
    (["data.dataset=text", "data.path=x.txt"], ["token sequences", "model.family rnn"]),
    (["data.dataset=table"], ["data", "data.path"]),
    (["data.dataset=table", "data.path=a.csv", "model.family=mlp"], ["data.target"]),
    (["search.metric=val_rmse"], ["search.metric", "'val_rmse' does not fit a classification",
                                  "val_accuracy"]),
    (["model.family=gan", "search.metric=val_accuracy"], ["does not fit a generation task",
                                                          "val_fid"]),
    (["search.metric=[val_accuracy, val_accuracy]"], ["search.metric", "once"]),
    (["search.metric=[val_accuracy, params]", "search.mode=max"],
     ["search.mode", "one mode per metric"]),
    (["model.family=transfer", "model.backbone=models:/x"], ["model.backbone",
                                                             "models:/NAME@ALIAS"]),
    (["train.lr_schedule=linear"], ["train.lr_schedule", "'cosine'", "'step'"]),
    (["train.patience=0"], ["train.patience", "greater than or equal to 1"]),
    (["search.space={dropout: {uniform: [0, 0.5], when: {batchnorm: true}}}"],
     ["search.space.dropout.when", "'batchnorm' must be a choice parameter"]),
    (["search.space={batchnorm: {choice: [true, false]}, "
      "dropout: {uniform: [0, 0.5], when: {batchnorm: maybe}}}"],
     ["search.space.dropout.when.batchnorm", "['maybe'] not among its choices"]),
    (["search.space={batchnorm: {choice: [true, false]}, "
      "dropout: {uniform: [0, 0.5], when: {batchnorm: {but: true}}}}"],
     ["search.space.dropout.when.batchnorm", "{not: value}"]),
    (["search.space={batchnorm: {choice: [true, false], when: {activation: relu}}, "
      "activation: {choice: [relu, tanh], when: {batchnorm: true}}}"],
     ["search.space", "depend on each other in a cycle"]),
    (["=3"], ["key=value"]),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_SPECS, ids=lambda v: str(v)[:60])
def test_bad_spec_names_the_field_and_the_fix(overrides: list[str], expected: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "bad"}, overrides)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    for words in expected:
        assert words in message, f"{words!r} not in {message!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", r"not valid YAML \(line \d"),
        ("- a\n- list\n", "top level must be a mapping"),
        ("train:\n  epochs: 3\n epochs: 4\n", "not valid YAML"),
    ],
)
def test_bad_yaml_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=expected):
        load_spec(path)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_a_users_builder_takes_its_own_knobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_nets.py").write_text(
        "import torch.nn as nn\n"
        "def tiny(*, input_shape, num_classes, hidden=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(),\n"
        "                         nn.Linear(hidden, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_spec({"model": {"family": "my_nets:tiny", "hidden": 4},
                       "search": {"space": {"hidden": {"int": [2, 16]}}}})
    assert list(spec.search.space) == ["model.hidden"]
    assert spec.with_params({"model.hidden": 12}).model.model_dump() == {
        "family": "my_nets:tiny", "hidden": 12}
    with pytest.raises(SpecError, match="must accept"):
        parse_spec({"model": {"family": "my_nets:tiny", "width": 4}})


def test_defaults_validate() -> None:
    assert SweepSpec() == parse_spec({})


def test_each_task_has_its_default_metric_and_direction() -> None:
    cases = {
        "classification": ({}, "val_accuracy", "max"),
        "regression": ({"model": {"family": "rnn"}, "data": {"dataset": "series"}},
                       "val_rmse", "min"),
        "language_model": ({"model": {"family": "rnn"},
                            "data": {"dataset": "text", "path": "corpus"}},
                           "val_perplexity", "min"),
        "generation": ({"model": {"family": "gan"}}, "val_fid", "min"),
    }
    for task, (raw, metric, mode) in cases.items():
        spec = parse_spec(raw)
        assert (spec.task, spec.search.objective, spec.search.direction) == (task, metric, mode)


def test_several_objectives_take_each_metrics_direction() -> None:
    spec = parse_spec({"search": {"metric": ["val_accuracy", "params", "latency_us"]}})
    assert spec.search.multi_objective
    assert spec.search.objectives == ["val_accuracy", "params", "latency_us"]
    assert spec.search.directions == ["max", "min", "min"]
    assert spec.search.objective == "val_accuracy", "the first one drives the scheduler"


def test_a_tables_task_comes_from_its_data_unless_given() -> None:
    raw = {"model": {"family": "mlp"},
           "data": {"dataset": "table", "path": "t.csv", "target": "y"}}
    assert parse_spec(raw).task is None
    assert parse_spec(raw).search.objective == "val_loss", "fits either task"
    assert parse_spec(raw, ["data.task=regression"]).task == "regression"


def test_a_relative_data_path_becomes_absolute(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_spec({"model": {"family": "rnn"},
                       "data": {"dataset": "text", "path": "corpus/part.txt"}})
    assert spec.data.path == str(tmp_path / "corpus" / "part.txt")


def test_conditions_are_stored_on_dotted_paths_and_decide_what_is_active() -> None:
    spec = parse_spec({"model": {"family": "rnn"}, "search": {"space": {
        "cell": {"choice": ["rnn", "lstm", "gru"]},
        "bidirectional": {"choice": [True, False], "when": {"cell": ["lstm", "gru"]}},
        "layers": {"int": [1, 3], "when": {"model.cell": {"not": "rnn"}}},
    }}})
    bidirectional = spec.search.space["model.bidirectional"]
    layers = spec.search.space["model.layers"]
    assert bidirectional.when == {"model.cell": ["lstm", "gru"]}
    assert layers.when == {"model.cell": {"not": ["rnn"]}}
    assert bidirectional.active({"model.cell": "gru"})
    assert not bidirectional.active({"model.cell": "rnn"})
    assert not layers.active({}), "off when what it depends on is off"
    trial = spec.with_params({"model.cell": "rnn"})
    params = trial.trial_params({"model.cell": "rnn"})
    assert "model.bidirectional" not in params and "model.layers" not in params
    assert params["model.cell"] == "rnn"


def test_conditions_hold_whatever_order_the_space_is_written_in() -> None:
    # A spec read back from YAML with sorted keys lists a parameter before its condition's.
    spec = parse_spec({"model": {"family": "rnn"}, "search": {"space": {
        "bidirectional": {"choice": [True, False], "when": {"cell": ["lstm", "gru"]}},
        "cell": {"choice": ["rnn", "lstm", "gru"]},
    }}})
    assert list(spec.search.space) == ["model.cell", "model.bidirectional"]
    assert parse_spec(spec.to_dict()) == spec
