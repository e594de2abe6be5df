"""`search.warm_start` refuses, before any work, a source with nothing to start from, and a
trial's knobs fit the new space or say why not (real SQLite catalog, no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialforge import parse_spec, resolve_home
from trialforge.catalog import Catalog, SweepRecord, utcnow
from trialforge.errors import SpecError
from trialforge.search.stores import create_stores
from trialforge.search.warm_start import fit, gather

SPACE = ["search.space.lr.loguniform=[0.001,0.1]", "search.space.width.choice=[8,16]",
         "model.family=mlp"]


def test_a_sweep_that_kept_no_study_is_refused(tmp_path: Path) -> None:
    home = resolve_home(tmp_path / "home")
    home.create()
    create_stores(home)
    catalog = Catalog(home.db_url)
    catalog.add_sweep(SweepRecord(
        id="nostudy1", name="plain", spec_yaml=parse_spec({}).to_yaml(), family="cnn",
        state="finished", created_at=utcnow(), study_name="trialforge-nostudy1",
        ray_storage_path="-", metric="val_accuracy", mode="max", trials_total=1))
    catalog.close()
    spec = parse_spec({}, [*SPACE, "search.warm_start=[plain]"])
    with pytest.raises(SpecError, match=r"search\.warm_start: sweep nostudy1 \(plain\) kept no "
                       r"Optuna study .*drop it"):
        gather(spec, home)
    empty = resolve_home(tmp_path / "empty")
    with pytest.raises(SpecError, match="this home has no sweeps yet"):
        gather(spec, empty)


def test_a_trials_knobs_fit_the_new_space_or_say_why_not() -> None:
    space = parse_spec({}, SPACE).search.space
    assert fit({"train.lr": 0.01, "model.width": 8}, space)[1] is None
    assert fit({"train.lr": 0.01}, space)[1] == "does not set model.width"
    assert fit({"train.lr": 0.5, "model.width": 8}, space)[1] == "train.lr outside the new space"
    assert fit({"train.lr": 0.01, "model.width": 8, "model.depth": 2}, space)[1] == \
        "sets model.depth, which the new space does not search"
