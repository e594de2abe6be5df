"""Sequence data: a generated multi-seasonal series to forecast, and text to model.

Both split in time (the validation part comes after the training part), as a forecast or a
language model is used: a shuffled split would leak the future into training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from trialforge.data.dataset import Dataset
from trialforge.data.preprocessing import ArrayInputs, Preprocessing, TextInputs
from trialforge.errors import DataError

if TYPE_CHECKING:
    from trialforge.spec import DataConfig

SERIES_LENGTH = 3000
TEXT_SUFFIXES = (".txt", ".md", ".text")


def generate_series(length: int = SERIES_LENGTH, seed: int = 0) -> np.ndarray:
    """An hourly-like series: daily and weekly seasons, a slow trend, and noise."""
    t = np.arange(length, dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0.0, 0.3, length)
    return (np.sin(2 * math.pi * t / 24) + 0.6 * np.sin(2 * math.pi * t / 168)
            + 0.0004 * t + noise).astype(np.float32)


def load_series(config: DataConfig, *, seed: int, layout: str) -> Dataset:
    """Windows of `data.window` steps, each to forecast the next value (regression).

    The series itself is fixed (its own seed), so every trial and every spec seed forecasts
    the same data; values are standardised with the training part's mean and spread.
    """
    if layout not in ("sequence", "vector"):
        raise DataError(f"series are sequences; shape them as sequence (rnn) or vector (mlp), "
                        f"not {layout!r}")
    series = generate_series()
    end = int(len(series) * (1 - config.test_fraction))  # the test part comes last
    cut = int(len(series) * (1 - config.val_fraction - config.test_fraction))
    if cut <= config.window or end - cut <= config.window or (
            end < len(series) and len(series) - end <= config.window):
        raise DataError(f"data.window={config.window} is too long for a {len(series)}-step "
                        f"series split {cut}/{end - cut}/{len(series) - end} steps "
                        "(train/validation/test)")
    mean, std = float(series[:cut].mean()), float(series[:cut].std())
    shape = (config.window, 1) if layout == "sequence" else (config.window,)
    # Raw input: the last `window` values, oldest first, in columns t0, t1, ...
    inputs = ArrayInputs.named("t", shape, offset=mean, scale=1 / std)
    scaled = ((series.astype(np.float64) - mean) / std).astype(np.float32)
    # Validation (and test) windows may look back into the part before, as a live forecast
    # would.
    parts = [_windows(scaled[start:stop], config.window, shape)
             for start, stop in ((0, cut), (cut - config.window, end),
                                 (end - config.window, len(series)))]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = parts
    tested = end < len(series)
    return Dataset("series", x_train, y_train, x_val, y_val, num_classes=1, task="regression",
                   x_test=x_test if tested else None, y_test=y_test if tested else None,
                   preprocessing=Preprocessing(inputs=inputs, task="regression",
                                               target_mean=mean, target_std=std))


def _windows(values: np.ndarray, window: int, shape: tuple[int, ...],
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of `window` steps (shaped `shape`) and the value after it."""
    starts = np.arange(max(0, len(values) - window))
    x = values[starts[:, None] + np.arange(window)].reshape(len(starts), *shape)
    return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            torch.from_numpy(values[starts + window].astype(np.float32)))


def read_text(path: Path) -> str:
    """A text file, or every text file under a folder (sorted, joined by blank lines)."""
    if not path.exists():
        raise DataError(f"data.path {str(path)!r}: no such file or folder; point it at a text "
                        f"file or a folder of {'/'.join(TEXT_SUFFIXES)} files")
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
    )
    if not files:
        raise DataError(f"data.path {str(path)!r}: no {'/'.join(TEXT_SUFFIXES)} files in it")
    try:
        return "\n\n".join(file.read_text(encoding="utf-8") for file in files)
    except UnicodeDecodeError as exc:
        raise DataError(f"data.path {str(path)!r}: not UTF-8 text ({exc.reason})") from None


def load_text(config: DataConfig, *, seed: int, layout: str) -> Dataset:
    """Next-character language modelling on the text at `data.path`.

    The vocabulary is every character of the text (sorted); examples are consecutive chunks
    of `data.window` characters, each target the chunk shifted by one.
    """
    path = Path(str(config.path)).expanduser()
    text = read_text(path)
    vocab = sorted(set(text))
    if len(vocab) < 2:
        raise DataError(f"data.path {str(path)!r}: the text is empty or one repeated character")
    lookup = {char: index for index, char in enumerate(vocab)}
    tokens = np.fromiter((lookup[char] for char in text), dtype=np.int64, count=len(text))
    chunks = len(tokens) // (config.window + 1)
    val_chunks = max(1, round(chunks * config.val_fraction))
    if chunks - val_chunks < 1:
        raise DataError(f"data.path {str(path)!r}: {len(text)} characters make {chunks} "
                        f"chunk(s) of data.window={config.window}; need at least 2: use more "
                        f"text or a shorter window")
    blocks = tokens[: chunks * (config.window + 1)].reshape(chunks, config.window + 1)
    x, y = torch.from_numpy(blocks[:, :-1].copy()), torch.from_numpy(blocks[:, 1:].copy())
    test_chunks = math.ceil(chunks * config.test_fraction)  # the last chunks
    end = chunks - test_chunks
    cut = end - val_chunks
    if cut < 1:
        raise DataError(f"data.path {str(path)!r}: {chunks} chunks of data.window="
                        f"{config.window} cannot be split train/validation/test; use more "
                        "text, a shorter window or smaller fractions")
    return Dataset("text", x[:cut], y[:cut], x[cut:end], y[cut:end], num_classes=len(vocab),
                   task="language_model", class_names=tuple(vocab),
                   model_args={"vocab_size": len(vocab)},
                   x_test=x[end:] if test_chunks else None,
                   y_test=y[end:] if test_chunks else None,
                   preprocessing=Preprocessing(
                       inputs=TextInputs(vocab=vocab, window=config.window),
                       task="language_model", class_names=vocab))
