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
    cut = int(len(series) * (1 - config.val_fraction))
    if cut <= config.window or len(series) - cut <= config.window:
        raise DataError(f"data.window={config.window} is too long for a {len(series)}-step "
                        f"series split {1 - config.val_fraction:.0%}/{config.val_fraction:.0%}")
    mean, std = series[:cut].mean(), series[:cut].std()
    scaled = (series - mean) / std
    x_train, y_train = _windows(scaled[:cut], config.window)
    # Validation windows may look back into the training part, as a live forecast would.
    x_val, y_val = _windows(scaled[cut - config.window :], config.window)
    if layout == "sequence":
        x_train, x_val = x_train[..., None], x_val[..., None]
    return Dataset("series", torch.from_numpy(x_train), torch.from_numpy(y_train),
                   torch.from_numpy(x_val), torch.from_numpy(y_val), num_classes=1,
                   task="regression")


def _windows(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(len(values) - window)
    x = values[starts[:, None] + np.arange(window)]
    return np.ascontiguousarray(x, dtype=np.float32), values[starts + window].astype(np.float32)


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
    cut = chunks - val_chunks
    return Dataset("text", x[:cut], y[:cut], x[cut:], y[cut:], num_classes=len(vocab),
                   task="language_model", class_names=tuple(vocab),
                   model_args={"vocab_size": len(vocab)})
