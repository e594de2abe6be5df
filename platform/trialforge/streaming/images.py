"""An image folder (one sub-folder per class) as a Ray Data stream.

The files are listed and split by file in the driver; Ray Data reads their bytes and
`DecodeImages` decodes each block in its tasks with the in-memory loader's own decoder, so
streamed and in-memory pixels are the same (RGB: a stream cannot know up front whether every
image is gray).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trialforge.data.files import decode_image, existing_path, image_files
from trialforge.data.preprocessing import ImageInputs, Preprocessing
from trialforge.data.split import split_by_file
from trialforge.errors import DataError
from trialforge.streaming.stream import StreamedData, TaskLimits, file_order

if TYPE_CHECKING:
    import ray.data

    from trialforge.spec import DataConfig


class DecodeImages:
    """Ray Data batch function: file bytes and paths -> `x` (N, 3, S, S) in [0, 1], `y`."""

    def __init__(self, class_names: tuple[str, ...], size: int, flatten: bool) -> None:
        self.labels = {name: label for label, name in enumerate(class_names)}
        self.inputs = ImageInputs(size=size, flatten=flatten)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pixels = [decode_image(bytes(raw), self.inputs.size, name=str(path))[0]
                  for raw, path in zip(batch["bytes"], batch["path"], strict=True)]
        y = np.array([self.labels[Path(str(path)).parent.name] for path in batch["path"]],
                     dtype=np.int64)
        return {"x": self.inputs.pixels(np.stack(pixels)), "y": y}


def image_split(config: DataConfig, layout: str) -> tuple[
        tuple[str, ...], list[tuple[int, Path]], list[tuple[int, Path]]]:
    """The class names, and the training and validation files of `config.path`."""
    root = existing_path(config.path, "a folder of class sub-folders")
    if layout not in ("image", "vector"):
        raise DataError(f"{root}: images can be shaped as 'image' or 'vector', not {layout!r}")
    class_names, files = image_files(root)
    return (class_names, *split_by_file(files, root, config.val_fraction))


def image_stream(config: DataConfig, layout: str, limits: TaskLimits, seed: int) -> StreamedData:
    """`config.path`'s images, split by file, decoded and resized as trials iterate them."""
    class_names, train, val = image_split(config, layout)
    root = Path(str(config.path))
    decode = DecodeImages(class_names, config.image_size, flatten=layout == "vector")
    shape = (3, config.image_size, config.image_size)
    inputs = ImageInputs(size=config.image_size, flatten=layout == "vector")
    return StreamedData(
        root.name, _read(train, decode, limits, seed), _read(val, decode, limits),
        (int(np.prod(shape)),) if layout == "vector" else shape,
        num_classes=len(class_names), class_names=class_names,
        preprocessing=Preprocessing(inputs=inputs, task="classification",
                                    class_names=list(class_names)))


def _read(files: list[tuple[int, Path]], decode: DecodeImages, limits: TaskLimits,
          shuffle_seed: int | None = None) -> ray.data.Dataset:
    import ray.data

    paths = [str(path) for _, path in files]
    # Whole blocks (batch_size=None) let Ray fuse the read and the decoding into one task.
    return ray.data.read_binary_files(
        paths, include_paths=True, shuffle=file_order(shuffle_seed), **limits.read_args()
    ).map_batches(decode, batch_format="numpy", batch_size=None, **limits.map_args())
