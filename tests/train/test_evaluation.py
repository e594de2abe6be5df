"""Each task's validation metrics, checked against scikit-learn and the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from trialforge.train.evaluation import classification_metrics


def test_macro_metrics_match_scikit_learn() -> None:
    generator = np.random.default_rng(0)
    truth = generator.integers(0, 5, 300)
    predicted = np.where(generator.random(300) < 0.7, truth, generator.integers(0, 6, 300))
    confusion = torch.zeros(6, 6, dtype=torch.long)
    for t, p in zip(truth, predicted, strict=True):
        confusion[t, p] += 1
    ours = classification_metrics(confusion)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="macro", zero_division=0)
    assert ours["val_accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert ours["val_precision"] == pytest.approx(precision)
    assert ours["val_recall"] == pytest.approx(recall)
    assert ours["val_f1"] == pytest.approx(f1)
    assert not any(math.isnan(v) for v in ours.values())
