"""Loaders for a user's own data: a table (CSV/Parquet), an `.npz` archive, an image folder.

Every check runs before the split, so bad data fails with a `DataError` that names the file,
what is wrong and how to fix it, before any trial starts. Loaders read only `path`, `target`,
`task`, `val_fraction`, `image_size` and `train_per_class` of the config.
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from trialforge.data.dataset import Dataset
from trialforge.data.preprocessing import ArrayInputs, ImageInputs, Preprocessing, TableInputs
from trialforge.data.split import SplitIndices, few_labels, split_dataset, split_indices
from trialforge.errors import DataError
from trialforge.tasks import Task

_TABLE_READERS: dict[str, Any] = {
    ".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet,
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NPZ_LAYOUTS = ("natural", "vector", "image", "sequence")


class FileConfig(Protocol):
    """The part of `DataConfig` a file loader reads (read-only, so any config object fits)."""

    @property
    def path(self) -> str | None: ...
    @property
    def target(self) -> str | None: ...
    @property
    def task(self) -> str: ...
    @property
    def val_fraction(self) -> float: ...
    @property
    def test_fraction(self) -> float: ...
    @property
    def image_size(self) -> int: ...
    @property
    def train_per_class(self) -> int | None: ...


def load_table(config: FileConfig, *, seed: int, layout: str) -> Dataset:
    """A CSV or Parquet table: `data.target` is the target, every other column a feature.

    Split first, then preprocessed with the training rows' statistics (`TableInputs`):
    numbers standardized (a missing one becomes the mean), text one-hot. Rows without a
    target are dropped. `data.task: auto` is a regression for a float target, a
    classification otherwise.
    """
    path = existing_path(config.path, "a .csv or .parquet file")
    if layout != "vector":
        raise DataError(f"{path}: a table gives vectors (rows of features), not {layout!r} "
                        "inputs; use family mlp")
    reader = _TABLE_READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown table extension {path.suffix!r}; allowed: "
                        f"{', '.join(_TABLE_READERS)}")
    _not_empty(path)
    try:
        frame: pd.DataFrame = reader(path)
    except (ValueError, OSError) as exc:  # parser, pyarrow and decoding errors alike
        raise DataError(f"{path}: cannot read it as {path.suffix} ({exc}); fix the file") from None
    frame.columns = [str(column) for column in frame.columns]
    columns = list(frame.columns)
    if len(frame) == 0:
        raise DataError(f"{path}: the table has no rows; add data below the header")
    target = config.target
    if not target or target not in columns:
        close = difflib.get_close_matches(target or "", columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{path}: data.target {target!r} is not a column; columns: "
                        f"{', '.join(columns)}{hint}")
    if len(columns) < 2:
        raise DataError(f"{path}: no feature columns besides the target {target!r}; add some")
    frame = frame[frame[target].notna()]
    if len(frame) == 0:
        raise DataError(f"{path}: every row's target {target!r} is missing; fill the column")
    labels = frame[target]
    task = infer_task(config.task, regression=pd.api.types.is_float_dtype(labels.dtype))
    if task == "regression" and not pd.api.types.is_numeric_dtype(labels.dtype):
        raise DataError(f"{path}: data.task is regression but target {target!r} is not numeric "
                        f"(e.g. {labels.iloc[0]!r}); set data.task: classification")
    y, names = _encode_target(path, f"target {target!r}", labels.to_numpy(), task)
    split = split_indices(path.name, y, task=task, val_fraction=config.val_fraction,
                          test_fraction=config.test_fraction, seed=seed)
    features = frame.drop(columns=[target]).reset_index(drop=True)
    inputs = TableInputs.fit(features.iloc[split.train])
    return _split(path, inputs.transform(features), y, task, config, seed, names,
                  Preprocessing(inputs=inputs, task=task, class_names=list(names)), split)


def load_npz(config: FileConfig, *, seed: int, layout: str) -> Dataset:
    """An `.npz` with arrays `x` (or `X`) and `y`, shaped for `layout`.

    `natural` keeps x as stored, `vector` flattens each example, `image` wants (N, C, H, W)
    or (N, H, W), `sequence` wants (N, T, F) or (N, T). `data.task: auto` is a regression
    for a float y, a classification for integer, bool or text labels.
    """
    path = existing_path(config.path, "an .npz file")
    if path.suffix.lower() != ".npz":
        raise DataError(f"{path}: unknown extension {path.suffix!r}; allowed: .npz "
                        "(save with numpy.savez(path, x=..., y=...))")
    if layout not in _NPZ_LAYOUTS:
        raise DataError(f"{path}: cannot shape npz data as {layout!r}; allowed: "
                        f"{', '.join(_NPZ_LAYOUTS)}")
    _not_empty(path)
    try:
        with np.load(path, allow_pickle=False) as archive:  # no pickles: they run code
            names = list(archive.files)
            x_key = next((k for k in ("x", "X") if k in names), None)
            y_key = next((k for k in ("y", "Y") if k in names), None)
            if x_key is None or y_key is None:
                raise DataError(f"{path}: needs arrays 'x' and 'y'; it has: "
                                f"{', '.join(names) or 'none'}; save with savez(x=..., y=...)")
            x, target = np.asarray(archive[x_key]), np.asarray(archive[y_key])
    except (ValueError, OSError, TypeError) as exc:  # not a zip, pickled objects, a .npy
        raise DataError(f"{path}: cannot read it as .npz ({exc}); save with numpy.savez") \
            from None
    if x.ndim == 0 or target.ndim == 0:
        raise DataError(f"{path}: x and y must be arrays of examples, not single numbers")
    if len(x) != len(target):
        raise DataError(f"{path}: x has {len(x)} examples but y has {len(target)}; "
                        "they must match")
    if len(x) == 0:
        raise DataError(f"{path}: x and y hold no examples")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: x has dtype {x.dtype}; it must hold numbers")
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.ndim != 1:
        raise DataError(f"{path}: y has shape {target.shape}; it must hold one target per "
                        "example, shape (N,)")
    task = infer_task(config.task, regression=target.dtype.kind in "fc")
    if task == "regression" and target.dtype.kind not in "biuf":
        raise DataError(f"{path}: data.task is regression but y has dtype {target.dtype}; "
                        "store numbers or set data.task: classification")
    shaped = _npz_layout(path, x.astype(np.float32), layout)
    y, classes = _encode_target(path, "y", target, task)
    # Raw input: an example's values, flattened, in columns x0, x1, ...
    inputs = ArrayInputs.named("x", shaped.shape[1:])
    return _split(path, shaped, y, task, config, seed, classes,
                  Preprocessing(inputs=inputs, task=task, class_names=list(classes)))


def _npz_layout(path: Path, x: np.ndarray, layout: str) -> np.ndarray:
    """Reshape x (N, ...) for `layout`, or say which shape the layout needs."""
    if layout == "vector":
        return x.reshape(len(x), -1)
    if layout == "natural":
        return x.reshape(len(x), 1) if x.ndim == 1 else x  # one feature per example
    wanted = {"image": ((4, 3), "(N, C, H, W) or (N, H, W)"),
              "sequence": ((3, 2), "(N, T, F) or (N, T)")}
    (full, short), shape = wanted[layout]
    if x.ndim == full:
        return x
    if x.ndim == short:
        return x[:, np.newaxis] if layout == "image" else x[..., np.newaxis]
    raise DataError(f"{path}: layout {layout!r} needs x of shape {shape}, got {x.shape}; "
                    "reshape x or use family mlp (vector layout)")


def load_images(config: FileConfig, *, seed: int, layout: str) -> Dataset:
    """A folder with one sub-folder of .png/.jpg images per class (the folder's name).

    Images are resized to `data.image_size` squared and scaled to [0, 1]: grayscale when
    every image is, RGB otherwise. `image` gives (N, C, H, W), `vector` flattens them.
    """
    root = existing_path(config.path, "a folder of class sub-folders")
    if layout not in ("image", "vector"):
        raise DataError(f"{root}: images can be shaped as 'image' or 'vector', not {layout!r}")
    class_names, files = image_files(root)
    decoded = [decode_image(file, config.image_size) for _, file in files]
    # Gray images were copied to all three channels: the model takes one when all are gray.
    inputs = ImageInputs(size=config.image_size,
                         channels=1 if all(is_gray for _, is_gray in decoded) else 3,
                         flatten=layout == "vector")
    x = inputs.pixels(np.stack([rgb for rgb, _ in decoded]))
    labels = np.array([label for label, _ in files], dtype=np.int64)
    data = split_dataset(root.name, x, labels, task="classification",
                         val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                         seed=seed, class_names=class_names,
                         preprocessing=Preprocessing(inputs=inputs, task="classification",
                                                     class_names=list(class_names)))
    if config.train_per_class is not None:
        data = few_labels(data, config.train_per_class, seed)
    return data


def image_files(root: Path) -> tuple[tuple[str, ...], list[tuple[int, Path]]]:
    """The class names of an image folder (its sub-folders, sorted) and every image file
    with its label; a folder that is not one of classes is a `DataError`."""
    if not root.is_dir():
        raise DataError(f"{root}: is a file; point data.path at a folder with one sub-folder "
                        "of images per class")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: has no class sub-folders; put each class's images in "
                        f"{root}/<class name>/")
    files: list[tuple[int, Path]] = []
    for label, folder in enumerate(folders):
        found = sorted(f for f in folder.iterdir()
                       if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"{folder}: class folder has no images "
                            f"({', '.join(_IMAGE_SUFFIXES)}); add some or remove the folder")
        files += [(label, f) for f in found]
    if len(folders) < 2:
        raise DataError(f"{root}: one class only ({folders[0].name!r}); a classifier needs at "
                        "least two class sub-folders")
    return tuple(folder.name for folder in folders), files


def decode_image(source: Path | bytes, size: int, name: str | None = None,
                 ) -> tuple[np.ndarray, bool]:
    """An image file (or its bytes) as (size, size, 3) uint8 RGB, and whether it was gray.
    An unreadable one is a `DataError` naming the file (`name`, for bytes)."""
    from PIL import Image, UnidentifiedImageError  # only image datasets need Pillow

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.load()  # decode now: a truncated file fails here, not mid-resize
            gray = image.mode in ("1", "L")
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, SyntaxError, ValueError) as exc:
        where = name or (source if isinstance(source, Path) else "an image")
        reason = "not an image format Pillow reads" if isinstance(
            exc, UnidentifiedImageError) else str(exc)
        raise DataError(f"{where}: cannot read this image ({reason}); replace or delete it") \
            from None
    return np.asarray(rgb, dtype=np.uint8), gray


def existing_path(path: str | None, what: str) -> Path:
    if not path:
        raise DataError(f"data.path is not set; point it at {what}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DataError(f"data.path {path!r}: no such file; expected {what} (relative paths "
                        f"start at {Path.cwd()})")
    return resolved


def _not_empty(path: Path) -> None:
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; write the data into it")


def infer_task(task: str, *, regression: bool) -> Task:
    """`data.task`, with `auto` decided by whether the target is a float."""
    if task == "auto":
        return "regression" if regression else "classification"
    if task in ("classification", "regression"):
        return cast(Task, task)
    raise DataError(f"data.task {task!r}: allowed: auto, classification, regression")


def _encode_target(path: Path, what: str, target: np.ndarray, task: Task,
                   ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels 0..C-1 and their names (classification), or float32 targets."""
    if task != "classification":
        return target.astype(np.float32), ()
    try:
        codes, uniques = pd.factorize(target, sort=True)
    except TypeError:  # labels of mixed types do not sort; their text does
        codes, uniques = pd.factorize(target.astype(str), sort=True)
    if (codes < 0).any():  # factorize codes a missing label as -1
        raise DataError(f"{path}: {what} has missing labels; fill or drop them")
    if len(uniques) < 2:
        raise DataError(f"{path}: {what} has one class only ({uniques[0]!r}); a classifier "
                        "needs two: add other classes or set data.task: regression")
    return codes.astype(np.int64), tuple(str(label) for label in uniques)


def _split(path: Path, x: np.ndarray, y: np.ndarray, task: Task, config: FileConfig, seed: int,
           names: tuple[str, ...], preprocessing: Preprocessing,
           indices: SplitIndices | None = None) -> Dataset:
    """Split with `seed` (or `indices`), once x and y are known to be finite."""
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError(f"{path}: holds NaN or infinite values; remove or fill them")
    return split_dataset(path.name, x, y, task=task, val_fraction=config.val_fraction,
                         test_fraction=config.test_fraction, seed=seed, class_names=names,
                         indices=indices, preprocessing=preprocessing)
