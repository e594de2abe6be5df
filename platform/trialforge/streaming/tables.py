"""A table in part files (CSV or Parquet) as a Ray Data stream, preprocessed by Ray Data's
own preprocessors fitted on the training files only.

The split is by file (`split_by_file`), so a streamed table is a folder of parts; each part's
columns are checked against the first's before anything is read. Numeric features:
standardized, a missing value then the training mean (0); text features: one-hot; the
target: labels 0..C-1 (classification) or float32 (regression). Rows without a target are
dropped. Each fitted statistic is one pass of Ray Data over the training files.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from trialforge.data.files import existing_path, infer_task
from trialforge.data.split import split_by_file
from trialforge.errors import DataError
from trialforge.streaming.stream import StreamedData, TaskLimits, file_order
from trialforge.tasks import Task

if TYPE_CHECKING:
    import ray.data

    from trialforge.spec import DataConfig

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class TableLayout:
    """What a streamed table's files hold, read from their headers: no rows are loaded."""

    root: Path
    target: str
    numbers: list[str]
    text: list[str]
    task: Task
    train: list[Path]
    val: list[Path]


def table_layout(config: DataConfig, layout: str) -> TableLayout:
    """The part files of `config.path`, checked (same columns, the target among them) and
    split by file."""
    root = existing_path(config.path, "a folder of .csv or .parquet part files")
    if layout != "vector":
        raise DataError(f"{root}: a table gives vectors (rows of features), not {layout!r} "
                        "inputs; use family mlp")
    parts = _parts(root)
    sample = _columns(parts, config.target)
    target = str(config.target)
    features = [column for column in sample.columns if column != target]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(sample[c])]
    task = infer_task(config.task, regression=pd.api.types.is_float_dtype(sample[target]))
    train, val = split_by_file([(0, part) for part in parts], root, config.val_fraction)
    return TableLayout(root, target, [c for c in features if c not in text], text, task,
                       [path for _, path in train], [path for _, path in val])


def table_stream(config: DataConfig, layout: str, limits: TaskLimits, seed: int) -> StreamedData:
    """`config.path`'s part files, split by file, preprocessed as trials iterate them."""
    from ray.data.preprocessors import (
        Chain,
        Concatenator,
        LabelEncoder,
        OneHotEncoder,
        SimpleImputer,
        StandardScaler,
    )

    table = table_layout(config, layout)
    target, numbers, text = table.target, table.numbers, table.text
    train, val = _read(table.train, target, limits, seed), _read(table.val, target, limits)
    steps: list[Any] = []
    if numbers:
        # Standardized first (its statistics skip missing values), a missing value becomes 0:
        # the training mean, with one pass over the files fewer than imputing first.
        steps += [StandardScaler(numbers),
                  # Ray's stub asks for a numbers.Number, which mypy does not see a float as.
                  SimpleImputer(numbers, strategy="constant",
                                fill_value=0.0)]  # type: ignore[arg-type]
    encoder = OneHotEncoder(text) if text else None
    if encoder is not None:
        steps.append(encoder)
    steps.append(Concatenator(numbers + text, output_column_name="x",
                              dtype=np.dtype("float32"), flatten=True))
    class_names: tuple[str, ...] = ()
    if table.task == "classification":
        steps.append(LabelEncoder(target, output_column="y"))
    preprocess = Chain(*steps).fit(train)  # statistics of the training files only
    if table.task == "classification":
        labels = steps[-1].stats_[f"unique_values({target})"]
        class_names = tuple(str(label) for label in labels)
    # Applied batch by batch in the task that reads the part (`transform` would be an
    # operator of its own, with no cap on its tasks).
    examples = _Examples(preprocess, target, table.task)
    train, val = (split.map_batches(examples, batch_format="pandas", **limits.map_args())
                  for split in (train, val))
    one_hot = sum(len(encoder.stats_[f"unique_values({column})"]) for column in text) \
        if encoder is not None else 0
    return StreamedData(table.root.name, train, val, (len(numbers) + one_hot,),
                        num_classes=len(class_names) if class_names else 1, task=table.task,
                        class_names=class_names)


class _Examples:
    """Ray Data batch function: rows of a part, preprocessed -> `x`, and the target as `y`
    (labels, or float32 for a regression)."""

    def __init__(self, preprocess: Any, target: str, task: str) -> None:
        self.preprocess, self.target, self.task = preprocess, target, task

    def __call__(self, batch: pd.DataFrame) -> dict[str, np.ndarray]:
        out = self.preprocess.transform_batch(batch)
        y = out["y"] if self.task == "classification" else out[self.target]
        return {"x": np.stack(out["x"].to_numpy()).astype(np.float32),
                "y": y.to_numpy().astype(np.int64 if self.task == "classification"
                                         else np.float32)}


def _parts(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(f"{root}: a streamed table is split by file: point data.path at a "
                        "folder of part files (e.g. pandas' to_parquet per chunk), or set "
                        "data.stream=false to read this one file into memory")
    parts = sorted(p for p in root.iterdir() if p.suffix.lower() in _SUFFIXES)
    kinds = {_SUFFIXES[p.suffix.lower()] for p in parts}
    if len(parts) < 2 or len(kinds) > 1:
        raise DataError(f"{root}: needs two or more part files of one kind (.csv or .parquet), "
                        f"has {len(parts)} ({', '.join(sorted(kinds)) or 'none'}); the split "
                        "is by file")
    return parts


def _columns(parts: list[Path], target: str | None) -> pd.DataFrame:
    """A few rows of the first part; every part's columns checked against them."""
    first = _head(parts[0])
    columns = [str(column) for column in first.columns]
    if not target or target not in columns:
        close = difflib.get_close_matches(target or "", columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{parts[0]}: data.target {target!r} is not a column; columns: "
                        f"{', '.join(columns)}{hint}")
    for part in parts[1:]:
        other = [str(column) for column in _head(part).columns]
        if other != columns:
            missing = sorted(set(columns) - set(other)) or "none"
            extra = sorted(set(other) - set(columns)) or "none"
            raise DataError(f"{part}: its columns differ from {parts[0].name}'s (missing: "
                            f"{missing}; extra: {extra}); every part needs the same columns")
    return first


def _head(path: Path) -> pd.DataFrame:
    try:
        if _SUFFIXES[path.suffix.lower()] == "csv":
            return pd.read_csv(path, nrows=100)
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).read_row_group(0).to_pandas().head(100)
    except (ValueError, OSError) as exc:  # parser, pyarrow and decoding errors alike
        raise DataError(f"{path}: cannot read it as {path.suffix} ({exc}); fix the file") \
            from None


def _read(paths: list[Path], target: str, limits: TaskLimits,
          shuffle_seed: int | None = None) -> ray.data.Dataset:
    import ray.data

    names = [str(path) for path in paths]
    reader = ray.data.read_csv if paths[0].suffix.lower() == ".csv" else ray.data.read_parquet
    return reader(names, shuffle=file_order(shuffle_seed), **limits.read_args()).map_batches(
        functools.partial(_drop_missing_target, target=target), batch_format="pandas",
        **limits.map_args())


def _drop_missing_target(batch: pd.DataFrame, target: str) -> pd.DataFrame:
    return batch[batch[target].notna()]
