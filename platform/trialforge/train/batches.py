"""Where a trial's batches come from: tensors in memory, or a Ray Data stream.

Either way a trial sees `train(epoch)`, this worker's training batches of an epoch in an
order seeded by (seed, epoch), and `val()`, its share of the validation set, as (x, y) pairs
on its device. With several workers each takes an equal share (DDP needs equal step counts):
in memory every `world_size`-th example, streamed its `ray.train.get_dataset_shard`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import torch

from trialforge.errors import DataError
from trialforge.train.placement import Placement

if TYPE_CHECKING:
    from trialforge.data.dataset import Dataset
    from trialforge.spec import SweepSpec
    from trialforge.streaming import StreamedData
    from trialforge.train.session import TrialSession

Batch = tuple[torch.Tensor, torch.Tensor]
#: What a streamed epoch's local shuffle buffer holds: bytes, not rows, so large images do not
#: make it large (341 RGB images of 64 px). It mixes rows of nearby files (a table's parts
#: keep their rows' order); the files themselves come in a new order each epoch.
SHUFFLE_BYTES = 16 * 2**20
#: A validation batch's inputs: one pass for small sets (up to `MAX_EVAL_ROWS` examples), and
#: bounded in bytes, so a large image's activations stay small (85 RGB images of 64 px).
EVAL_BYTES = 4 * 2**20
MAX_EVAL_ROWS = 4096


class Batches(Protocol):
    def train(self, epoch: int) -> Iterator[Batch]: ...
    def val(self) -> Iterator[Batch]: ...


class TensorBatches:
    """Batches indexed out of in-memory tensors (on the device, or copied there per batch)."""

    def __init__(self, data: Dataset, spec: SweepSpec, session: TrialSession,
                 placement: Placement) -> None:
        self.data = placement.place_data(data)
        self.spec, self.session, self.placement = spec, session, placement
        self.eval_rows = eval_rows(data.input_shape, data.input_dtype, spec.train.batch_size)

    def train(self, epoch: int) -> Iterator[Batch]:
        data, batch = self.data, self.placement.batch
        for index in epoch_batches(len(data.y_train), self.spec, epoch, self.session,
                                   self.placement.data_device):
            yield batch(data.x_train, index), batch(data.y_train, index)

    def val(self) -> Iterator[Batch]:
        rank, world_size = self.session.rank, self.session.world_size
        x, y = self.data.x_val[rank::world_size], self.data.y_val[rank::world_size]
        for start in range(0, len(x), self.eval_rows):
            part = slice(start, start + self.eval_rows)
            yield self.placement.batch(x, part), self.placement.batch(y, part)


class StreamBatches:
    """Batches Ray Data reads, decodes and moves to the device (pinned, on a GPU) as the
    trial asks for them."""

    def __init__(self, stream: StreamedData, spec: SweepSpec, session: TrialSession,
                 placement: Placement) -> None:
        self.stream, self.spec, self.session, self.placement = stream, spec, session, placement
        batch_size = spec.train.batch_size
        self.eval_rows = eval_rows(stream.input_shape, stream.input_dtype, batch_size)
        self.shuffle_rows = max(batch_size, SHUFFLE_BYTES // example_bytes(
            stream.input_shape, stream.input_dtype))

    def train(self, epoch: int) -> Iterator[Batch]:
        size = max(1, self.spec.train.batch_size // self.session.world_size)
        for batch in self._iterate("train", size, shuffle_seed=self.spec.seed * 100_003 + epoch):
            self.session.check_stopped()
            yield batch

    def val(self) -> Iterator[Batch]:
        return self._iterate("val", self.eval_rows, shuffle_seed=None)

    def _iterate(self, split: str, size: int, shuffle_seed: int | None) -> Iterator[Batch]:
        device = self.session.device
        batches = self.session.stream_shard(self.stream, split).iter_torch_batches(
            batch_size=size, device=device, pin_memory=device.type == "cuda",
            local_shuffle_buffer_size=self.shuffle_rows if shuffle_seed is not None else None,
            local_shuffle_seed=shuffle_seed)
        try:
            for batch in batches:
                yield self.placement.layout(batch["x"]), batch["y"]
        except Exception as exc:
            # A bad file fails a Ray Data task: its DataError arrives as text in Ray's error.
            found = re.findall(r"DataError: (.+)", str(exc))
            if not found:
                raise
            raise DataError(found[-1]) from None


def example_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """The bytes one example of `shape` and torch `dtype` (e.g. `float32`) takes."""
    return math.prod(shape) * torch.empty(0, dtype=getattr(torch, dtype)).element_size()


def eval_rows(shape: tuple[int, ...], dtype: str, batch_size: int) -> int:
    """Examples per validation batch: `EVAL_BYTES` of inputs, within [batch_size,
    MAX_EVAL_ROWS]."""
    return max(batch_size, min(MAX_EVAL_ROWS, EVAL_BYTES // example_bytes(shape, dtype)))


def epoch_batches(
    size: int, spec: SweepSpec, epoch: int, session: TrialSession, device: torch.device
) -> Iterator[torch.Tensor]:
    """The example indices of each batch this worker trains on in `epoch`, on `device` (where
    the data is).

    A permutation seeded by (seed, epoch), so a resumed trial sees the batches an
    uninterrupted one would; every worker takes an equal shard (DDP needs equal step counts)
    and `train.batch_size` is global. Checks between batches whether Ray stopped the trial.
    """
    generator = torch.Generator().manual_seed(spec.seed * 100_003 + epoch)
    order = torch.randperm(size, generator=generator)
    shard_size = size // session.world_size
    shard = order[session.rank :: session.world_size][:shard_size].to(device)
    batch_size = max(1, spec.train.batch_size // session.world_size)
    for start in range(0, shard_size, batch_size):
        session.check_stopped()
        yield shard[start : start + batch_size]
