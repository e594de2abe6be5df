"""Every shipped spec under jobs/ loads, validates, and builds its model on its data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from support import REPO
from trialforge import load_spec
from trialforge.data import load_dataset
from trialforge.models import build_model, input_layout
from trialforge.spec import candidate_values

JOBS = sorted((REPO / "jobs").glob("*.yaml"))


def test_the_demo_and_the_mlp_job_ship() -> None:
    assert {p.name for p in JOBS} >= {"cnn_digits.yaml", "mlp_digits.yaml"}


@pytest.mark.parametrize("path", JOBS, ids=lambda p: p.name)
def test_job_spec_is_valid_and_builds(path: Path) -> None:
    spec = load_spec(path)
    assert spec.search.space, "a shipped job searches something"
    data = load_dataset(spec.data.dataset, val_fraction=spec.data.val_fraction, seed=spec.seed,
                        layout=input_layout(spec.model.family))
    # The base config and each bound of every parameter build a working model.
    variants = [spec] + [
        spec.with_params({name: value})
        for name, param in spec.search.space.items()
        for value in candidate_values(param)
    ]
    for variant in variants:
        knobs = variant.model.model_dump(exclude={"family"})
        model = build_model(variant.model.family, knobs, data.input_shape, data.num_classes)
        with torch.no_grad():
            assert model.eval()(data.x_val[:4]).shape == (4, data.num_classes)
