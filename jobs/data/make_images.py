"""Write a generated image-classification folder: one sub-folder of PNG files per class.

Ten classes, five shapes (circle, square, triangle, cross, ring) and five textures (stripes,
checks, dots, waves, speckles), each drawn at a random size of 32-64 px, with a random
position, scale, angle and colours over a noisy background. Nothing is downloaded, the same
arguments write the same files, and the folder reads as any user's image folder does
(`data: {dataset: images, path: ...}`), in memory or streamed (`data.stream: true`).

Run: python jobs/data/make_images.py OUT [--per-class 200] [--classes 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

Draw = Callable[[ImageDraw.ImageDraw, np.random.Generator, int, tuple[int, int, int]], None]
MIN_SIZE, MAX_SIZE = 32, 64


def _box(rng: np.random.Generator, size: int) -> tuple[float, float, float]:
    """A shape's centre and radius, inside the image."""
    radius = rng.uniform(0.2, 0.4) * size
    x, y = rng.uniform(radius, size - radius, 2)
    return float(x), float(y), float(radius)


def _polygon(rng: np.random.Generator, size: int, corners: int) -> list[tuple[float, float]]:
    x, y, radius = _box(rng, size)
    turn = rng.uniform(0, 2 * math.pi)
    return [(x + radius * math.cos(turn + 2 * math.pi * k / corners),
             y + radius * math.sin(turn + 2 * math.pi * k / corners)) for k in range(corners)]


def circle(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
           colour: tuple[int, int, int]) -> None:
    x, y, r = _box(rng, size)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def square(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
           colour: tuple[int, int, int]) -> None:
    draw.polygon(_polygon(rng, size, 4), fill=colour)


def triangle(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
             colour: tuple[int, int, int]) -> None:
    draw.polygon(_polygon(rng, size, 3), fill=colour)


def cross(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
          colour: tuple[int, int, int]) -> None:
    x, y, r = _box(rng, size)
    width = max(2, int(r / 2.5))
    draw.line((x - r, y - r, x + r, y + r), fill=colour, width=width)
    draw.line((x - r, y + r, x + r, y - r), fill=colour, width=width)


def ring(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
         colour: tuple[int, int, int]) -> None:
    x, y, r = _box(rng, size)
    draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=max(2, int(r / 3)))


def stripes(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
            colour: tuple[int, int, int]) -> None:
    step = int(rng.integers(4, 9))
    for offset in range(-size, 2 * size, step):
        draw.line((offset, 0, offset + size * rng.uniform(-0.3, 0.3), size), fill=colour,
                  width=max(1, step // 2))


def checks(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
           colour: tuple[int, int, int]) -> None:
    step = int(rng.integers(5, 11))
    for row in range(0, size, step):
        for column in range(0, size, step):
            if (row // step + column // step) % 2 == 0:
                draw.rectangle((column, row, column + step - 1, row + step - 1), fill=colour)


def dots(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
         colour: tuple[int, int, int]) -> None:
    for _ in range(int(rng.integers(8, 20))):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(1.5, 3.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def waves(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
          colour: tuple[int, int, int]) -> None:
    period, step = rng.uniform(8, 16), int(rng.integers(6, 10))
    for base in range(0, size + step, step):
        points = [(x, base + 3 * math.sin(2 * math.pi * x / period)) for x in range(size + 1)]
        draw.line(points, fill=colour, width=2)


def speckles(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int,
             colour: tuple[int, int, int]) -> None:
    for x, y in rng.integers(0, size, (size * size // 6, 2)):
        draw.point((int(x), int(y)), fill=colour)


CLASSES: dict[str, Draw] = {
    "circle": circle, "square": square, "triangle": triangle, "cross": cross, "ring": ring,
    "stripes": stripes, "checks": checks, "dots": dots, "waves": waves, "speckles": speckles,
}


def draw_image(kind: Draw, rng: np.random.Generator) -> Image.Image:
    """One image of a class: a noisy background, then the class's shape or texture."""
    size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
    background = rng.integers(0, 160, 3)
    noise = rng.normal(0, 12, (size, size, 3))
    pixels = np.clip(background + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    colour = tuple(int(c) for c in rng.integers(120, 256, 3))
    kind(ImageDraw.Draw(image), rng, size, colour)  # type: ignore[arg-type]
    return image


def write_images(folder: Path, per_class: int = 200, classes: int = 10, seed: int = 0) -> Path:
    """Write `per_class` PNG files for each of the first `classes` classes under `folder`."""
    if not 2 <= classes <= len(CLASSES):
        raise ValueError(f"classes must be 2-{len(CLASSES)}, got {classes}")
    rng = np.random.default_rng(seed)
    for name, kind in list(CLASSES.items())[:classes]:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            draw_image(kind, rng).save(folder / name / f"{name}-{index:05d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_images(args.folder, args.per_class, args.classes, args.seed)
    print(f"{args.per_class * args.classes} images in {args.folder}")


if __name__ == "__main__":
    main()
