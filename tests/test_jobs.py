"""Every shipped spec under jobs/ loads, validates, and builds its model on its data.

(Each one also runs as a sweep through the CLI in tests/e2e/test_families_e2e.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from make_images import write_images
from torch import nn

from support import REPO
from trialforge import load_spec
from trialforge.data.dataset import Dataset
from trialforge.models import build_model
from trialforge.spec import SweepSpec, candidate_values
from trialforge.train.loop import trial_data

JOBS = sorted((REPO / "jobs").glob("*.yaml"))
SHAPES = REPO / "jobs" / "data" / "shapes"


def test_a_job_for_every_family_and_task() -> None:
    specs = [load_spec(path) for path in JOBS]
    assert {spec.model.family for spec in specs} >= {"mlp", "cnn", "rnn", "gan", "transfer"}
    assert {spec.task for spec in specs} >= {"classification", "regression", "language_model",
                                             "generation"}
    assert any(spec.search.multi_objective for spec in specs)
    assert any(param.when for spec in specs for param in spec.search.space.values())


def _model(spec: SweepSpec, data: Dataset) -> nn.Module:
    knobs = spec.model.model_dump(exclude={"family"})
    if spec.model.family == "gan":
        from trialforge.models.gan import build_gan

        return build_gan(knobs, data.input_shape)[0]
    return build_model(spec.model.family, knobs, data.input_shape, data.num_classes,
                       **data.model_args)


@pytest.mark.parametrize("path", JOBS, ids=lambda p: p.name)
def test_job_spec_is_valid_and_builds(path: Path, tmp_path: Path) -> None:
    spec = load_spec(path)
    if spec.data.path == str(SHAPES):  # written by its generator, not shipped
        write_images(tmp_path, per_class=4, classes=3)
        spec = load_spec(path, [f"data.path={tmp_path}"])
    assert spec.search.space, "a shipped job searches something"
    data = trial_data(spec)
    # The base config and each bound of every parameter build a working model (registry
    # backbones are resolved by a sweep: tests/e2e builds those).
    variants = [spec] + [
        spec.with_params({name: value})
        for name, param in spec.search.space.items()
        for value in candidate_values(param)
        if not str(value).startswith("models:/")
    ]
    for variant in variants:
        model = _model(variant, data).eval()
        with torch.no_grad():
            if variant.model.family == "gan":
                assert model(torch.randn(4, variant.model.latent_dim)).shape[1:] == \
                    data.input_shape
            else:
                assert model(data.x_val[:4]).shape[0] == 4
