"""A table in part files (CSV or Parquet) as a Ray Data stream, preprocessed as in memory
(`TableInputs`), with statistics Ray Data aggregates over the training files only.

The split is by file (`split_by_file`), so a streamed table is a folder of parts; each part's
columns are checked against the first's before anything is read. Numeric features:
standardized, a missing value then the training mean (0); text features: one-hot; the
target: labels 0..C-1 (classification) or float32 (regression). Rows without a target are
dropped. The statistics take one pass of Ray Data over the training files.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trialforge.data.files import existing_path, infer_task
from trialforge.data.preprocessing import Preprocessing, TableInputs, integer_columns
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
    integers: list[str]  # numbers that are whole in the first part
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
    numbers = [c for c in features if c not in text]
    return TableLayout(root, target, numbers, text, integer_columns(sample[numbers]), task,
                       [path for _, path in train], [path for _, path in val])


def table_stream(config: DataConfig, layout: str, limits: TaskLimits, seed: int) -> StreamedData:
    """`config.path`'s part files, split by file, preprocessed as trials iterate them."""
    from ray.data.aggregate import Mean, Std, Unique

    table = table_layout(config, layout)
    target, numbers, text = table.target, table.numbers, table.text
    train, val = _read(table.train, target, limits, seed), _read(table.val, target, limits)
    classify = table.task == "classification"
    # The statistics of the training files, in one pass of Ray Data.
    stats = train.aggregate(
        *(Mean(column) for column in numbers), *(Std(column, ddof=0) for column in numbers),
        *(Unique(column, ignore_nulls=True) for column in [*text, *([target] if classify else [])]))

    def values(column: str) -> list[str]:
        return sorted({str(value) for value in stats[f"unique({column})"]})

    std = [float(stats[f"std({column})"] or 0.0) or 1.0 for column in numbers]
    inputs = TableInputs(numbers=numbers, mean=[float(stats[f"mean({c})"] or 0.0) for c in numbers],
                         std=std, categories={column: values(column) for column in text},
                         integers=table.integers)
    class_names = tuple(values(target)) if classify else ()
    preprocessing = Preprocessing(inputs=inputs, task=table.task, class_names=list(class_names))
    examples = _Examples(inputs, target, class_names)
    train, val = (split.map_batches(examples, batch_format="pandas", **limits.map_args())
                  for split in (train, val))
    return StreamedData(table.root.name, train, val, (inputs.width,),
                        num_classes=len(class_names) if classify else 1, task=table.task,
                        class_names=class_names, preprocessing=preprocessing)


class _Examples:
    """Ray Data batch function: a part's rows -> `x` (`TableInputs`, as served) and the
    target as `y` (labels 0..C-1, or float32 for a regression)."""

    def __init__(self, inputs: TableInputs, target: str, class_names: tuple[str, ...]) -> None:
        self.inputs, self.target = inputs, target
        self.labels = {name: label for label, name in enumerate(class_names)}

    def __call__(self, batch: pd.DataFrame) -> dict[str, np.ndarray]:
        target = batch[self.target]
        y = (target.astype(str).map(self.labels).to_numpy(np.int64) if self.labels
             else target.to_numpy(np.float32))
        return {"x": self.inputs.transform(batch), "y": y}


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
