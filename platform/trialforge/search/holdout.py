"""The champion's score on the test split (`data.test_fraction`).

Only this module reads a dataset's test split, and the sweep's driver calls it once, after
the champion is chosen: every trial got its data `without_test()` (`train.loop.trial_data`),
so no selection ever saw it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from trialforge.data import load_dataset
from trialforge.registry.versions import model_config, rebuild_model
from trialforge.spec import SweepSpec
from trialforge.train.batches import Batch, eval_rows
from trialforge.train.contract import TrialCheckpoint
from trialforge.train.evaluation import OneProcess, evaluate
from trialforge.train.loop import trial_layout


def score_on_test(spec: SweepSpec, state: TrialCheckpoint) -> dict[str, float]:
    """The metrics (`test_accuracy`, ...) of checkpoint `state` of `spec` (the champion's
    knobs set) on the test split, on the CPU."""
    data = load_dataset(spec.data, seed=spec.split_seed, layout=trial_layout(spec))
    x, y = data.x_test, data.y_test
    if x is None or y is None:
        raise ValueError("score_on_test needs data.test_fraction > 0")
    model = rebuild_model(model_config(spec, state), state["model"])
    rows = eval_rows(data.input_shape, data.input_dtype, spec.train.batch_size)

    def batches() -> Iterator[Batch]:
        for start in range(0, len(x), rows):
            yield x[start : start + rows], y[start : start + rows]

    with torch.no_grad():
        metrics, _ = evaluate(model, batches(), data.task, data.num_classes, OneProcess())
    return {f"test_{name.removeprefix('val_')}": value for name, value in metrics.items()
            if name != "latency_us"}


def holdout_metric(objective: str) -> str:
    """The test split's name for validation metric `objective` (`val_f1` -> `test_f1`; an
    objective that is no validation metric, such as `params`, has no test value)."""
    return f"test_{objective.removeprefix('val_')}"
