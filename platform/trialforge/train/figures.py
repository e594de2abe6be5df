"""Small images a trial logs to MLflow, drawn with Pillow (no plotting stack in a trial)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

CELL = 28  # pixels per confusion-matrix cell
MARGIN = 22  # room for the class labels


def confusion_image(confusion: torch.Tensor, class_names: Sequence[str] = ()) -> np.ndarray:
    """A confusion matrix as an RGB image: rows are true classes, columns predicted ones,
    each cell shaded by its share of the row and labelled with its count."""
    counts = confusion.numpy()
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
