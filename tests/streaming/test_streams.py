"""Streamed data (`data.stream`): the split by file, the checks made before Ray starts, and a
trial's loop reading batches through Ray Data (the session's Ray instance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from make_images import write_images

from support import RecordingSession
from trialforge import parse_spec
from trialforge.data.files import image_files
from trialforge.data.split import split_by_file
from trialforge.errors import DataError, SpecError
from trialforge.spec import DataConfig
from trialforge.streaming import check_stream, open_stream
from trialforge.streaming.images import DecodeImages
from trialforge.streaming.stream import TaskLimits
from trialforge.train.loop import train_loop


def _table_parts(folder: Path, parts: int = 3, rows: int = 40) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(parts):
        size = rng.normal(size=rows)
        colour = rng.choice(["red", "green", "blue"], rows)
        frame = pd.DataFrame({"size": size, "colour": colour,
                              "label": np.where(size + (colour == "red") > 0.3, "big", "small")})
        frame.loc[2, "size"] = np.nan  # imputed with the training files' mean
        frame.loc[5, "label"] = None  # dropped
        frame.to_parquet(folder / f"part-{index}.parquet")
    return folder


def test_the_split_is_by_file_and_the_same_whatever_the_seed(tmp_path: Path) -> None:
    root = write_images(tmp_path / "shapes", per_class=10, classes=3)
    _, files = image_files(root)
    train, val = split_by_file(files, root, 0.2)
    assert split_by_file(files, root, 0.2) == (train, val)
    assert {label for label, _ in val} == {0, 1, 2} and len(val) == 6, "2 of each class"
    assert not {path for _, path in train} & {path for _, path in val}
    more = [*files, (0, root / "circle" / "zz-new.png")]
    _, val_after = split_by_file(more, root, 0.2)
    assert len({path for _, path in val} & {path for _, path in val_after}) >= 5, \
        "a new file moves at most one other"


def test_an_unreadable_image_is_an_error_naming_its_file() -> None:
    decode = DecodeImages(("a", "b"), size=8, flatten=False)
    with pytest.raises(DataError, match=r"^/data/a/broken\.png: cannot read this image \(not "
                       r"an image format Pillow reads\); replace or delete it$"):
        decode({"bytes": np.array([b"not a png"], dtype=object),
                "path": np.array(["/data/a/broken.png"])})


def test_bad_streamed_tables_are_refused_before_ray_starts(tmp_path: Path) -> None:
    single = tmp_path / "one.csv"
    single.write_text("a,label\n1,x\n2,y\n")
    with pytest.raises(DataError, match=r"split by file: point data\.path at a folder"):
        check_stream(DataConfig(dataset="table", path=str(single), target="label",
                                stream=True), "vector")
    parts = _table_parts(tmp_path / "parts")
    pd.DataFrame({"size": [1.0], "label": ["big"]}).to_parquet(parts / "part-9.parquet")
    with pytest.raises(DataError, match=r"part-9\.parquet: its columns differ from "
                       r"part-0\.parquet's \(missing: \['colour'\]; extra: none\)"):
        check_stream(DataConfig(dataset="table", path=str(parts), target="label",
                                stream=True), "vector")
    (parts / "part-9.parquet").unlink()
    with pytest.raises(DataError, match=r"data\.target 'lable' is not a column.*'label'"):
        check_stream(DataConfig(dataset="table", path=str(parts), target="lable",
                                stream=True), "vector")
    with pytest.raises(SpecError, match="data: stream: dataset 'digits' is read into memory"):
        parse_spec({}, ["data.stream=true"])


def test_a_streams_tasks_share_the_cluster_cpus_among_the_trials(ray_address: str) -> None:
    import ray

    cpus = int(ray.cluster_resources()["CPU"])
    assert TaskLimits.for_sweep(1).read_args() == {"num_cpus": 0.01, "concurrency": cpus}
    assert TaskLimits.for_sweep(1).map_args()["compute"].size == cpus
    assert TaskLimits.for_sweep(cpus).concurrency == 1
    assert TaskLimits.for_sweep(cpus * 10).concurrency == 1, "at least one task each"


def test_a_streamed_table_is_preprocessed_with_training_statistics(
    tmp_path: Path, ray_address: str,
) -> None:
    stream = open_stream(DataConfig(dataset="table", path=str(_table_parts(tmp_path / "t")),
                                    target="label", stream=True), "vector")
    assert stream.task == "classification" and stream.class_names == ("big", "small")
    assert stream.input_shape == (4,), "size, and colour one-hot over 3 values"
    batch = stream.train.take_batch(200)
    assert batch["x"].dtype == np.float32 and batch["y"].dtype == np.int64
    assert np.isfinite(batch["x"]).all(), "missing sizes were imputed"
    assert len(batch["y"]) == 78, "two training files of 40 rows, less their missing labels"
    assert abs(float(batch["x"][:, 0].mean())) < 1e-5, "standardized on the training files"


def test_a_streamed_trial_trains_and_a_bad_file_names_itself(
    tmp_path: Path, ray_address: str,
) -> None:
    root = write_images(tmp_path / "shapes", per_class=6, classes=3)
    spec = parse_spec({"model": {"family": "cnn", "channels": 4},
                       "data": {"dataset": "images", "path": str(root), "image_size": 16,
                                "stream": True}}, ["train.epochs=2", "train.batch_size=6"])
    stream = open_stream(spec.data, "image")
    session = RecordingSession()
    train_loop(spec, session, stream)
    assert [m["epoch"] for m, _, _ in session.reports] == [1, 2]
    assert all(np.isfinite(m["val_loss"]) for m, _, _ in session.reports)
    assert session.reports[-1][0]["train_loss"] < session.reports[0][0]["train_loss"]
    checkpoint = session.reports[-1][1]
    assert checkpoint is not None and checkpoint["input_shape"] == [3, 16, 16]
    assert stream.train.stats().startswith("Operator 1 ReadBinary->MapBatches(DecodeImages)"), \
        "a file is read and decoded in one task"

    (root / "square" / "square-00003.png").write_bytes(b"truncated")
    broken = open_stream(spec.data, "image")
    with pytest.raises(DataError, match=r"square-00003\.png: cannot read this image"):
        train_loop(spec, RecordingSession(), broken)
