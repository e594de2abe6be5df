"""Optuna is told each trial by the scoring rule (a real study in sqlite; no Ray)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from trialforge import parse_spec
from trialforge.search.searcher import OptunaSearcher, optuna_champion
from trialforge.search.space import searcher_space
from trialforge.search.tuner import SAMPLERS


def test_every_epoch_is_an_intermediate_value_and_the_value_is_the_best_epochs(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    searcher = OptunaSearcher(space={"x": FloatDistribution(0.0, 1.0)}, metric="acc",
                              mode="max", study_name="s", storage=optuna.storages.RDBStorage(url))
    curves = {"done": [0.6, 0.9, 0.8], "stopped": [0.95, 0.5], "nan": [float("nan")]}
    ends = {"done": "completed", "stopped": "running", "nan": "diverged"}
    for trial_id, curve in curves.items():
        searcher.suggest(trial_id)
        for epoch, acc in enumerate(curve[:-1], start=1):
            searcher.on_trial_result(trial_id, {"epoch": epoch, "acc": acc,
                                                "trial_state": "running"})
        # Tune hands the result that ends a trial (a scheduler's stop) to on_trial_complete.
        searcher.on_trial_complete(trial_id, {"epoch": len(curve), "acc": curve[-1],
                                              "trial_state": ends[trial_id]})
    study = optuna.load_study(study_name="s", storage=url)
    trials = {t.user_attrs["trialforge.trial_id"]: t for t in study.trials}
    assert trials["done"].state == TrialState.COMPLETE and trials["done"].value == 0.9
    assert trials["done"].intermediate_values == {1: 0.6, 2: 0.9, 3: 0.8}
    assert trials["stopped"].state == TrialState.PRUNED
    assert trials["stopped"].intermediate_values == {1: 0.95, 2: 0.5}
    assert trials["nan"].state == TrialState.FAIL
    assert optuna_champion(optuna.storages.RDBStorage(url), "s") == "done", \
        "a pruned trial is no champion, however good its early epoch"


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_each_sampler_searches_the_specs_space_seeded(name: str, tmp_path: Path) -> None:
    """Every `search.sampler` drives a real study over a space with a log-uniform, an int and
    a choice, and the same seed suggests the same first trials."""
    spec = parse_spec({"seed": 5, "model": {"family": "mlp"}, "search": {
        "sampler": name, "trials": 12,
        "space": {"lr": {"loguniform": [1e-4, 1e-1]}, "depth": {"int": [1, 3]},
                  "activation": {"choice": ["relu", "tanh"]}}}})

    def suggestions(study: str) -> list[dict[str, object]]:
        searcher = OptunaSearcher(
            space=searcher_space(spec.search.space), metric="val_accuracy", mode="max",
            sampler=SAMPLERS[name](spec), study_name=study,
            storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}"))
        suggested = []
        for index in range(8):
            config = searcher.suggest(str(index))
            assert config is not None
            suggested.append(config)
            accuracy = 1.0 - abs(float(config["train.lr"]) - 0.01)  # a made-up landscape
            searcher.on_trial_complete(str(index), {"epoch": 1, "val_accuracy": accuracy,
                                                    "trial_state": "completed"})
        return suggested

    first, again = suggestions("a"), suggestions("b")
    assert first == again, "seeded by the spec's seed"
    assert all(1e-4 <= float(c["train.lr"]) <= 1e-1 and c["model.depth"] in (1, 2, 3)
               and c["model.activation"] in ("relu", "tanh") for c in first)


def test_a_sampler_of_one_objective_is_refused_for_several() -> None:
    from trialforge.errors import SpecError

    with pytest.raises(SpecError, match=r"sampler 'cmaes' optimizes one objective; with "
                       r"several metrics choose one of tpe, random, gp, nsga2, qmc"):
        parse_spec({"search": {"sampler": "cmaes", "metric": ["val_accuracy", "params"]}})
    assert parse_spec({"search": {"sampler": "nsga2",
                                  "metric": ["val_accuracy", "params"]}}).search.multi_objective
