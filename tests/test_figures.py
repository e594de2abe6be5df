"""The figures the driver draws from what a trial left beside its best checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from trialforge.figures import (
    FIGURES_FILE,
    confusion_figure,
    confusion_image,
    draw_figures,
    image_figure,
)


def test_the_confusion_matrix_image_shades_each_row_by_its_share() -> None:
    image = confusion_image(np.array([[9, 1], [0, 10]]), ("cat", "dog"))
    assert image.dtype == np.uint8 and image.shape == (22 + 2 * 28, 22 + 2 * 28, 3)
    centre = lambda row, col: image[22 + row * 28 + 3, 22 + col * 28 + 3]  # noqa: E731
    assert centre(0, 0)[0] < centre(0, 1)[0], "90% of a row is darker than 10%"
    assert tuple(centre(1, 0)) == (255, 255, 255), "an empty cell stays white"


def test_a_trials_figures_are_drawn_as_pngs_beside_them(tmp_path: Path) -> None:
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / FIGURES_FILE).write_text(json.dumps({
        "confusion_matrix": confusion_figure([[3, 0], [1, 2]], ["a", "b"]),
        "samples": image_figure(grid)}))
    drawn = draw_figures(tmp_path)
    assert sorted(path.name for path in drawn) == ["confusion_matrix.png", "samples.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "samples.png")), grid)
    assert Image.open(tmp_path / "confusion_matrix.png").size == (22 + 2 * 28,) * 2
    assert draw_figures(tmp_path / "none") == [], "a checkpoint without figures draws none"
