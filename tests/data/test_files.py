"""Users' own data files: tables, npz archives and image folders, and the errors bad data gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from trialforge.data.dataset import Dataset
from trialforge.data.files import load_images, load_npz, load_table
from trialforge.errors import DataError

DIGITS = load_digits()


def config(path: Path, **fields: Any) -> SimpleNamespace:
    """The fields a file loader reads, as `DataConfig` would give them."""
    values: dict[str, Any] = {"target": None, "task": "auto", "val_fraction": 0.25,
                              "test_fraction": 0.0,
                              "image_size": 8, "train_per_class": None}
    return SimpleNamespace(path=str(path), **{**values, **fields})


def write_table(path: Path, rows: int = 40) -> Path:
    """Rows with a numeric, a text and a partly missing feature, and a text target."""
    generator = np.random.default_rng(0)
    frame = pd.DataFrame({
        "height": generator.normal(170, 10, rows),
        "colour": generator.choice(["red", "green", "blue"], rows),
        "age": generator.integers(20, 60, rows).astype(float),
        "label": generator.choice(["dog", "cat"], rows),
        "price": generator.normal(5.0, 1.0, rows),
    })
    frame.loc[3, "age"] = np.nan
    frame.loc[5, "label"] = None
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def write_digit_folder(root: Path, digits: tuple[int, ...] = (0, 1, 2), each: int = 8,
                       suffix: str = ".png", mode: str = "L") -> Path:
    """Real 8x8 digits, one sub-folder per digit, written as image files."""
    for digit in digits:
        folder = root / f"digit{digit}"
        folder.mkdir(parents=True)
        for index in np.flatnonzero(DIGITS.target == digit)[:each]:
            pixels = (DIGITS.images[index] * 15).astype(np.uint8)
            Image.fromarray(pixels, mode="L").convert(mode).save(folder / f"{index}{suffix}")
    return root


def assert_same(first: Dataset, second: Dataset) -> None:
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_val, second.y_val)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pq"])
def test_table_classification_encodes_text_and_fills_gaps(tmp_path: Path, suffix: str) -> None:
    path = write_table(tmp_path / f"pets{suffix}")
    data = load_table(config(path, target="label"), seed=0, layout="vector")
    x = torch.cat([data.x_train, data.x_val])
    # height, age, price + 3 one-hot colours; the row without a label is dropped.
    assert x.shape == (39, 6) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert data.x_train[:, :3].mean(dim=0).abs().max() < 1e-5, "standardized on training rows"
    assert set(x[:, 3:].unique().tolist()) == {0.0, 1.0}, "colours one-hot"
    assert data.task == "classification" and data.num_classes == 2
    assert data.class_names == ("cat", "dog") and data.y_train.dtype == torch.int64
    assert data.name == path.name


def test_table_float_target_is_a_regression_and_task_overrides(tmp_path: Path) -> None:
    path = write_table(tmp_path / "pets.csv")
    data = load_table(config(path, target="price"), seed=0, layout="vector")
    assert data.task == "regression" and data.num_classes == 1 and data.class_names == ()
    # label is a text feature here: two one-hot columns, and no row is dropped.
    assert data.y_train.dtype == torch.float32 and data.x_train.shape[1] == 7
    assert len(data.y_train) + len(data.y_val) == 40
    heights = load_table(config(path, target="height", task="classification"), seed=0,
                      layout="vector")
    assert heights.task == "classification" and heights.num_classes == 40


def test_table_split_is_seeded(tmp_path: Path) -> None:
    path = write_table(tmp_path / "pets.csv")
    first, again, other = (load_table(config(path, target="label"), seed=seed, layout="vector")
                           for seed in (1, 1, 2))
    assert_same(first, again)
    assert not torch.equal(first.x_val, other.x_val)


def test_npz_layouts_of_real_digits(tmp_path: Path) -> None:
    keep = np.isin(DIGITS.target, (3, 7, 9))
    path = tmp_path / "digits.npz"
    np.savez(path, X=DIGITS.images[keep], y=DIGITS.target[keep])
    shapes = {"natural": (8, 8), "vector": (64,), "image": (1, 8, 8), "sequence": (8, 8)}
    for layout, shape in shapes.items():
        data = load_npz(config(path), seed=0, layout=layout)
        assert data.input_shape == shape and data.x_train.dtype == torch.float32
    assert data.task == "classification" and data.num_classes == 3
    assert data.class_names == ("3", "7", "9")
    assert set(data.y_train.tolist()) == {0, 1, 2}
    assert_same(data, load_npz(config(path), seed=0, layout="sequence"))


def test_npz_float_y_is_a_regression(tmp_path: Path) -> None:
    path = tmp_path / "series.npz"
    np.savez(path, x=np.random.default_rng(0).normal(size=(20, 5, 2)), y=np.linspace(0, 1, 20))
    data = load_npz(config(path), seed=0, layout="sequence")
    assert data.task == "regression" and data.num_classes == 1
    assert data.input_shape == (5, 2) and data.y_train.dtype == torch.float32


def test_image_folder_of_real_digits(tmp_path: Path) -> None:
    root = write_digit_folder(tmp_path / "digits")
    data = load_images(config(root, image_size=16), seed=0, layout="image")
    assert data.input_shape == (1, 16, 16) and data.x_train.dtype == torch.float32
    assert len(data.y_train) + len(data.y_val) == 24
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert data.task == "classification" and data.num_classes == 3
    assert data.class_names == ("digit0", "digit1", "digit2")
    vectors = load_images(config(root, image_size=16), seed=0, layout="vector")
    assert torch.equal(vectors.x_train, data.x_train.reshape(-1, 256))


def test_colour_images_with_upper_case_suffixes_are_rgb(tmp_path: Path) -> None:
    root = write_digit_folder(tmp_path / "digits", (4, 5), suffix=".JPG", mode="RGB")
    data = load_images(config(root), seed=0, layout="image")
    assert data.input_shape == (3, 8, 8) and data.class_names == ("digit4", "digit5")


def _table(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


def _npz(tmp_path: Path, **arrays: Any) -> Path:
    np.savez(tmp_path / "d.npz", **arrays)
    return tmp_path / "d.npz"


def _corrupt_image(tmp_path: Path) -> Path:
    root = write_digit_folder(tmp_path / "img", (0, 1), each=2)
    (root / "digit1" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def _empty_class(tmp_path: Path) -> Path:
    root = write_digit_folder(tmp_path / "img", (0, 1), each=2)
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")
    return root


Case = Callable[[Path], tuple[Any, SimpleNamespace, str]]
CSV = "a,label\n1,x\n2,y\n3,x\n4,y\n"
BAD_DATA: dict[str, tuple[Case, str]] = {
    "path missing": (lambda p: (load_table, config(p / "nope.csv", target="y"), "vector"),
                     "no such file"),
    "empty file": (lambda p: (load_table, config(_table(p, ""), target="y"), "vector"),
                   "the file is empty"),
    "no rows": (lambda p: (load_table, config(_table(p, "a,y\n"), target="y"), "vector"),
                "has no rows"),
    "unknown extension": (lambda p: (load_table, config(_table(p, CSV, "t.txt"), target="y"),
                                     "vector"), "allowed: .csv, .parquet, .pq"),
    "target absent": (lambda p: (load_table, config(_table(p, CSV), target="labl"), "vector"),
                      r"columns: a, label; did you mean 'label'\?"),
    "table as image": (lambda p: (load_table, config(_table(p, CSV), target="label"), "image"),
                       "a table gives vectors .* use family mlp"),
    "one class table": (lambda p: (load_table, config(_table(p, "a,y\n1,x\n2,x\n"), target="y"),
                                   "vector"), "one class only \\('x'\\)"),
    "regression on text": (lambda p: (load_table, config(_table(p, CSV), target="label",
                                                         task="regression"), "vector"),
                           "not numeric"),
    "npz without x/y": (lambda p: (load_npz, config(_npz(p, a=np.ones(3), b=np.ones(3))),
                                   "natural"), "needs arrays 'x' and 'y'; it has: a, b"),
    "npz not a zip": (lambda p: (load_npz, config(_table(p, "hello", "d.npz")), "natural"),
                      "cannot read it as .npz"),
    "lengths differ": (lambda p: (load_npz, config(_npz(p, x=np.ones((5, 2)), y=np.ones(4))),
                                  "vector"), "x has 5 examples but y has 4"),
    "wrong layout shape": (lambda p: (load_npz, config(_npz(p, x=np.ones((4, 2)),
                                                            y=np.arange(4))), "image"),
                           r"needs x of shape \(N, C, H, W\) or \(N, H, W\), got \(4, 2\)"),
    "one class npz": (lambda p: (load_npz, config(_npz(p, x=np.ones((4, 2)), y=np.zeros(4, int))),
                                 "vector"), "one class only"),
    "folder is a file": (lambda p: (load_images, config(_table(p, CSV)), "image"), "is a file"),
    "no class folders": (lambda p: (load_images, config(p), "image"), "no class sub-folders"),
    "class without images": (lambda p: (load_images, config(_empty_class(p)), "image"),
                             "empty: class folder has no images"),
    "corrupt image": (lambda p: (load_images, config(_corrupt_image(p)), "image"),
                      "broken.png: cannot read this image"),
    "one class folder": (lambda p: (load_images, config(write_digit_folder(p / "i", (3,))),
                                    "image"), "one class only \\('digit3'\\)"),
}


@pytest.mark.parametrize(("case", "message"), BAD_DATA.values(), ids=BAD_DATA.keys())
def test_bad_data_is_a_data_error_that_says_what_is_wrong(
    tmp_path: Path, case: Case, message: str
) -> None:
    loader, settings, layout = case(tmp_path)
    with pytest.raises(DataError, match=message):
        loader(settings, seed=0, layout=layout)


def test_the_generated_image_folder_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    import hashlib

    from make_images import MAX_SIZE, MIN_SIZE, write_images

    def digest(folder: Path) -> dict[str, str]:
        return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(folder.rglob("*.png"))}

    first = write_images(tmp_path / "a", per_class=4, classes=4, seed=1)
    assert digest(first) == digest(write_images(tmp_path / "b", per_class=4, classes=4, seed=1))
    assert digest(first) != digest(write_images(tmp_path / "c", per_class=4, classes=4, seed=2))
    assert sorted(p.name for p in first.iterdir()) == ["circle", "cross", "square", "triangle"]
    sizes = {Image.open(f).size for f in first.rglob("*.png")}
    assert all(MIN_SIZE <= w == h <= MAX_SIZE for w, h in sizes) and len(sizes) > 1
    data = load_images(config(first, image_size=16, val_fraction=0.5, train_per_class=2),
                       seed=0, layout="image")
    assert data.x_train.shape == (8, 3, 16, 16), "2 labelled images of each of the 4 classes"
    assert torch.bincount(data.y_train).tolist() == [2, 2, 2, 2]
    assert data.class_names == ("circle", "cross", "square", "triangle")
