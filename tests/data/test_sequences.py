"""Sequence data: the generated series split in time, and text as next-character chunks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from support import REPO
from trialforge.data import load_dataset
from trialforge.data.sequences import generate_series
from trialforge.errors import DataError
from trialforge.spec import DataConfig

CORPUS = REPO / "jobs" / "data" / "corpus"


def _config(**fields: object) -> DataConfig:
    return DataConfig.model_validate(fields)


def test_the_series_has_seasons_and_is_the_same_for_every_seed() -> None:
    series = generate_series()
    assert torch.equal(torch.from_numpy(series), torch.from_numpy(generate_series()))
    daily = torch.from_numpy(series[:24 * 60]).reshape(60, 24).mean(dim=0)
    assert daily.max() - daily.min() > 1.5, "a daily season stands out of the noise"


def test_series_windows_forecast_the_next_step_with_validation_after_training() -> None:
    sequences = load_dataset(_config(dataset="series", window=24), seed=0, layout="sequence")
    vectors = load_dataset(_config(dataset="series", window=24), seed=5, layout="vector")
    assert sequences.task == "regression" and sequences.num_classes == 1
    assert sequences.input_shape == (24, 1) and vectors.input_shape == (24,)
    assert torch.equal(sequences.x_train[..., 0], vectors.x_train), "the seed does not matter"
    # Each target is the step after its window: window i+1 ends with target i.
    assert torch.equal(vectors.x_train[1:, -1], vectors.y_train[:-1])
    assert abs(float(vectors.y_train.mean())) < 0.1, "standardised on the training part"
    with pytest.raises(DataError, match="sequences"):
        load_dataset(_config(dataset="series"), seed=0, layout="image")
    with pytest.raises(DataError, match="too long"):
        load_dataset(_config(dataset="series", window=5000), seed=0, layout="vector")


def test_text_becomes_chunks_of_tokens_and_their_shifted_targets() -> None:
    data = load_dataset(_config(dataset="text", path=str(CORPUS), window=32), seed=0,
                        layout="tokens")
    assert data.task == "language_model"
    assert data.input_shape == (32,) and data.x_train.dtype == torch.int64
    assert data.num_classes == len(data.class_names) == data.model_args["vocab_size"]
    assert torch.equal(data.x_train[:, 1:], data.y_train[:, :-1]), "targets are shifted by 1"
    text = "".join(data.class_names[int(i)] for i in data.x_train[0])
    assert text == (CORPUS / "part-0.txt").read_text()[:32]


@pytest.mark.parametrize(("write", "expected"), [
    (lambda tmp: tmp / "missing", "no such file or folder"),
    (lambda tmp: (tmp / "folder").mkdir() or tmp / "folder", "no .txt/.md/.text files"),
    (lambda tmp: (tmp / "a.txt").write_text("aaaa") and tmp / "a.txt", "one repeated character"),
    (lambda tmp: (tmp / "b.txt").write_text("short text") and tmp / "b.txt", "need at least 2"),
    (lambda tmp: (tmp / "c.txt").write_bytes(b"\xff\xfe\xfa") and tmp / "c.txt", "not UTF-8"),
])
def test_unusable_text_is_a_data_error(write: object, expected: str, tmp_path: Path) -> None:
    path = write(tmp_path)  # type: ignore[operator]
    with pytest.raises(DataError, match=expected):
        load_dataset(_config(dataset="text", path=str(path), window=32), seed=0, layout="tokens")
