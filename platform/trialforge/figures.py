"""The images a trial's MLflow run shows, drawn by the driver from what the trial left.

A trial leaves each figure of its best epochs as data (`FIGURES_FILE` beside the checkpoint:
a confusion matrix's counts, a grid's pixels), and the driver draws the best one's once, when
it uploads that checkpoint. Drawing in the trial cost ~10 ms of Python per best epoch, on a
thread that holds up the epoch training beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Beside a checkpoint: figure name -> its data (`confusion_figure`, `image_figure`).
FIGURES_FILE = "figures.json"
CELL = 28  # pixels per confusion-matrix cell
MARGIN = 22  # room for the class labels

Figure = dict[str, Any]


def confusion_figure(counts: Sequence[Sequence[int]], class_names: Sequence[str] = ()) -> Figure:
    """A confusion matrix (rows true classes, columns predicted ones) as figure data."""
    return {"confusion": [list(row) for row in counts], "labels": list(class_names)}


def image_figure(pixels: np.ndarray) -> Figure:
    """A uint8 HxW (grey) or HxWx3 (colour) image as figure data."""
    return {"image": pixels.tolist()}


def draw_figures(folder: Path) -> list[Path]:
    """Draw the figures of `folder`'s `FIGURES_FILE` as PNG files beside it."""
    path = folder / FIGURES_FILE
    if not path.is_file():
        return []
    drawn = []
    for name, figure in json.loads(path.read_text()).items():
        image = (confusion_image(np.asarray(figure["confusion"]), figure["labels"])
                 if "confusion" in figure else np.asarray(figure["image"], dtype=np.uint8))
        drawn.append(save_png(image, folder / f"{name}.png"))
    return drawn


def confusion_image(counts: np.ndarray, class_names: Sequence[str] = ()) -> np.ndarray:
    """A confusion matrix as an RGB image: rows are true classes, columns predicted ones,
    each cell shaded by its share of the row and labelled with its count."""
    from PIL import Image, ImageDraw

    classes = len(counts)
    names = list(class_names) or [str(index) for index in range(classes)]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = MARGIN + classes * CELL
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for row in range(classes):
        draw.text((4, MARGIN + row * CELL + 8), names[row][:2], fill="black")
        draw.text((MARGIN + row * CELL + 8, 4), names[row][:2], fill="black")
        for column in range(classes):
            blue = int(255 * (1 - shares[row, column]))
            box = (MARGIN + column * CELL, MARGIN + row * CELL,
                   MARGIN + (column + 1) * CELL - 1, MARGIN + (row + 1) * CELL - 1)
            draw.rectangle(box, fill=(blue, blue, 255))
            ink = "white" if shares[row, column] > 0.5 else "black"
            draw.text((box[0] + 3, box[1] + 8), str(int(counts[row, column])), fill=ink)
    return np.asarray(image)


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write a uint8 HxW (grey) or HxWx3 (colour) image as a PNG file."""
    from PIL import Image

    Image.fromarray(image).save(path, format="PNG")
    return path
