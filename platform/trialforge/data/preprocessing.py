"""What turns a dataset's raw input into its model's tensors, and the model's output into
answers: fitted on the training split only, saved with every checkpoint and registered model.

The loaders build their tensors with it, and the registered model's pyfunc serves with the
same object, so a champion takes what its data was made of (a table's rows by column name,
image files or bytes, text, or arrays) and answers with labels and probabilities.
Everything in it is plain JSON (`model_dump`), so checkpoints keep loading with
`weights_only=True`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from trialforge.errors import DataError
from trialforge.tasks import Task


class _Inputs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def _columns(self, frame: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
        missing = [column for column in wanted if column not in frame.columns]
        if missing:
            raise DataError(f"the input lacks column(s) {', '.join(map(repr, missing))}; the "
                            f"model takes {', '.join(wanted)}")
        return frame[wanted]


class TableInputs(_Inputs):
    """A table's features: numbers standardized with the training rows' mean and spread (a
    missing value becomes the mean, so 0), text one-hot over the training rows' values (a
    value never seen in training is all zeros). Features in order: numbers, then each text
    column's values."""

    kind: Literal["table"] = "table"
    numbers: list[str]
    mean: list[float]
    std: list[float]
    categories: dict[str, list[str]]
    integers: list[str] = Field(default_factory=list)  # numbers that came as whole numbers

    @classmethod
    def fit(cls, features: pd.DataFrame) -> TableInputs:
        """Fitted on `features`: the training rows only."""
        text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        numbers = [str(c) for c in features.columns if str(c) not in text]
        values = features[numbers].to_numpy(np.float64)
        with np.errstate(all="ignore"):  # an all-missing column: no mean (0), no spread (1)
            mean = np.nan_to_num(np.nanmean(values, axis=0)) if len(numbers) else np.zeros(0)
            std = np.nan_to_num(np.nanstd(values, axis=0)) if len(numbers) else np.zeros(0)
        std[std == 0] = 1.0  # a constant column would divide by zero
        categories = {column: sorted(features[column].dropna().astype(str).unique().tolist())
                      for column in text}
        return cls(numbers=numbers, mean=mean.tolist(), std=std.tolist(), categories=categories,
                   integers=integer_columns(features[numbers]))

    @property
    def columns(self) -> list[str]:
        return [*self.numbers, *self.categories]

    @property
    def width(self) -> int:
        return len(self.numbers) + sum(len(values) for values in self.categories.values())

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """(N, width) float32 features of `frame`'s rows (it may hold other columns)."""
        frame = self._columns(frame, self.columns)
        try:
            numbers = frame[self.numbers].to_numpy(np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"numeric columns {', '.join(self.numbers)} hold text ({exc})") \
                from None
        scaled = np.nan_to_num((numbers - np.array(self.mean)) / np.array(self.std))
        one_hot = [(frame[column].astype(str).to_numpy()[:, None] == np.array(values)[None, :])
                   & frame[column].notna().to_numpy()[:, None]
                   for column, values in self.categories.items()]
        parts = [scaled, *one_hot]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def column_types(self) -> list[tuple[str, str]]:
        return [(c, "long" if c in self.integers else "double") for c in self.numbers] + [
            (c, "string") for c in self.categories]


def integer_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of `frame` that hold whole numbers (served as MLflow's `long`)."""
    return [str(c) for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])]


class ImageInputs(_Inputs):
    """Images, column `image`: a file's bytes or its path, resized to `size` squared and
    scaled to [0, 1]; gray (1 channel) or RGB, flattened for a vector model."""

    kind: Literal["images"] = "images"
    size: int
    channels: int = 3
    flatten: bool = False

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        from pathlib import Path

        from trialforge.data.files import decode_image

        sources = self._columns(frame, ["image"])["image"]
        pixels = np.stack([
            decode_image(source if isinstance(source, bytes) else Path(str(source)),
                         self.size)[0] for source in sources])
        return self.pixels(pixels)

    def pixels(self, rgb: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB images -> the model's float32 input."""
        x = rgb.transpose(0, 3, 1, 2)[:, : self.channels].astype(np.float32) / 255
        return x.reshape(len(x), -1) if self.flatten else np.ascontiguousarray(x)

    def column_types(self) -> list[tuple[str, str]]:
        return [("image", "binary")]


class TextInputs(_Inputs):
    """Text, column `text`: each row's last characters (up to `window`, as many as the
    shortest row has), as indices into the training text's vocabulary."""

    kind: Literal["text"] = "text"
    vocab: list[str]
    window: int

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        texts = [str(text) for text in self._columns(frame, ["text"])["text"]]
        length = min(self.window, *(len(text) for text in texts))
        if length < 1:
            raise DataError("column 'text': every row needs at least one character")
        lookup = {char: index for index, char in enumerate(self.vocab)}
        unknown = sorted({char for text in texts for char in text[-length:]} - set(lookup))
        if unknown:
            raise DataError(f"column 'text': characters {unknown!r} are not in the model's "
                            "vocabulary (the training text's characters)")
        return np.array([[lookup[char] for char in text[-length:]] for text in texts],
                        dtype=np.int64)

    def column_types(self) -> list[tuple[str, str]]:
        return [("text", "string")]


class ArrayInputs(_Inputs):
    """Numbers in named columns (`names`, one per value of an example, flattened), as
    `(value - offset) * scale` in the model's `shape`: digits' pixels (0-16), an npz's
    values, a series' last steps, a generator's noise."""

    kind: Literal["array"] = "array"
    names: list[str]
    shape: list[int]
    offset: float = 0.0
    scale: float = 1.0

    @classmethod
    def named(cls, prefix: str, shape: tuple[int, ...], **kwargs: Any) -> ArrayInputs:
        return cls(names=[f"{prefix}{index}" for index in range(int(np.prod(shape)))],
                   shape=list(shape), **kwargs)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        values = self._columns(frame, self.names).to_numpy(np.float64)
        return self.values(values)

    def values(self, raw: np.ndarray) -> np.ndarray:
        """Raw values (N, ...) -> the model's float32 input."""
        scaled = (raw.astype(np.float64) - self.offset) * self.scale
        return scaled.reshape(len(raw), *self.shape).astype(np.float32)

    def column_types(self) -> list[tuple[str, str]]:
        return [(name, "double") for name in self.names]


RawInputs = Annotated[TableInputs | ImageInputs | TextInputs | ArrayInputs,
                      Field(discriminator="kind")]


class Preprocessing(BaseModel):
    """A model's raw input (`inputs`) and how its outputs read: class names for a classifier
    or a language model, the target's training mean and spread for a regression."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: RawInputs
    task: Task
    class_names: list[str] = Field(default_factory=list)
    target_mean: float = 0.0
    target_std: float = 1.0

    def transform(self, frame: pd.DataFrame) -> torch.Tensor:
        """The model's input batch for `frame`'s raw rows."""
        return torch.from_numpy(self.inputs.transform(frame))

    def answers(self, output: torch.Tensor) -> pd.DataFrame:
        """The model's output batch as answers: `label` and one `probability_<class>` column
        per class; a language model's next `label` and its `probability`; a regression's
        `prediction`; a generator's `value<i>` columns."""
        output = output.detach().float().cpu()
        if self.task == "regression":
            values = output.reshape(len(output), -1)[:, 0].numpy().astype(np.float64)
            return pd.DataFrame({"prediction": values * self.target_std + self.target_mean})
        if self.task == "generation":
            flat = output.reshape(len(output), -1).numpy()
            return pd.DataFrame(flat, columns=[f"value{i}" for i in range(flat.shape[1])])
        if self.task == "language_model":  # (N, T, V): the next character after the last
            best = output[:, -1].softmax(-1).max(-1)
            return pd.DataFrame({"label": [self.class_names[i] for i in best.indices.tolist()],
                                 "probability": best.values.numpy().astype(np.float64)})
        probabilities = output.softmax(-1).numpy().astype(np.float64)
        names = self.class_names or [str(i) for i in range(probabilities.shape[1])]
        answers = pd.DataFrame({"label": [names[i] for i in probabilities.argmax(1)]})
        for index, name in enumerate(names):
            answers[f"probability_{name}"] = probabilities[:, index]
        return answers

    def output_schema(self) -> list[tuple[str, str]]:
        if self.task == "regression":
            return [("prediction", "double")]
        if self.task == "language_model":
            return [("label", "string"), ("probability", "double")]
        if self.task == "generation":
            return []
        return [("label", "string")] + [(f"probability_{name}", "double")
                                        for name in self.class_names]
