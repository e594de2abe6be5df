"""Optuna is told each trial by the scoring rule (a real study in sqlite; no Ray)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from trialforge.search.searcher import OptunaSearcher, optuna_champion


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
