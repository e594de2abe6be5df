"""Where a trial's tensors live: its data on the device or in host memory, and the memory
format of image models.

- A split that fits in `DEVICE_DATA_SHARE` of the trial's GPU memory goes to the GPU once: a
  batch is then an index on the GPU, with no copy per step (`train.data_on_device`).
- A larger one stays in host memory. Each batch is gathered there, pinned, and copied with
  `non_blocking=True`, so the copy overlaps the kernels still queued for the previous step.
- Image models on a GPU run channels-last (NHWC), the layout of cuDNN's tensor-core
  convolutions (`train.channels_last`).

On a CPU there is one memory: the data stays where it is and every batch is an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from trialforge.data.dataset import Dataset
    from trialforge.spec import TrainConfig

#: The share of a trial's GPU memory its data may take when `data_on_device` is left to choose:
#: the rest is for the model, its optimizer state and the activations of a batch.
DEVICE_DATA_SHARE = 0.25


@dataclass(frozen=True)
class Placement:
    """The device a trial computes on, where its data lives, and its models' memory format."""

    device: torch.device
    data_on_device: bool = True
    channels_last: bool = False

    @classmethod
    def choose(cls, train: TrainConfig, device: torch.device, data_bytes: int | None
               ) -> Placement:
        """What `train` asks for on `device`; its defaults (None) decided by the data's size
        (None: streamed, never placed whole) and the device."""
        on_gpu = device.type == "cuda"
        channels_last = on_gpu if train.channels_last is None else train.channels_last
        if not on_gpu:  # one memory: the data is on the device already
            return cls(device, True, channels_last)
        if data_bytes is None:  # a stream: Ray Data brings each batch
            return cls(device, False, channels_last)
        on_device = train.data_on_device
        if on_device is None:
            memory = torch.cuda.get_device_properties(device).total_memory
            on_device = fits_on_device(data_bytes, memory, train.gpu_fraction)
        return cls(device, on_device, channels_last)

    @property
    def data_device(self) -> torch.device:
        """Where the data, and the batch indices into it, live."""
        return self.device if self.data_on_device else torch.device("cpu")

    def place_data(self, data: Dataset) -> Dataset:
        """The split where it lives for the whole trial."""
        return data.to(self.data_device)

    def place_model(self, model: nn.Module) -> nn.Module:
        """`model` in channels-last memory when asked (a no-op for layers without 4-D weights)."""
        if self.channels_last:  # torch's stubs lack `memory_format`, which Module.to takes
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return model

    def batch(self, tensor: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
        """The examples `index` picks from `tensor`, on the device in the model's format."""
        batch = tensor[index]
        if batch.device != self.device:
            if self.device.type == "cuda":
                batch = batch.pin_memory()  # a pinned source lets the copy run asynchronously
            batch = batch.to(self.device, non_blocking=True)
        return self.layout(batch)

    def layout(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch of images in the model's memory format (other batches as they are)."""
        if self.channels_last and batch.dim() == 4:
            return batch.contiguous(memory_format=torch.channels_last)
        return batch


def fits_on_device(data_bytes: int, device_memory: int, gpu_fraction: float) -> bool:
    """Whether data of `data_bytes` goes to the GPU once: it takes at most `DEVICE_DATA_SHARE`
    of the trial's part (`gpu_fraction`) of the GPU's `device_memory`."""
    return data_bytes <= device_memory * gpu_fraction * DEVICE_DATA_SHARE
