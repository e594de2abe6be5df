"""Where a trial's data lives and the layout of its models (pure logic, on the CPU)."""

from __future__ import annotations

import pytest
import torch

from trialforge import parse_spec
from trialforge.data.dataset import Dataset
from trialforge.train.placement import DEVICE_DATA_SHARE, Placement, fits_on_device

GIB = 2**30


def _data(examples: int = 10) -> Dataset:
    return Dataset("toy", torch.zeros(examples, 3, 4, 4), torch.zeros(examples, dtype=torch.long),
                   torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), 2)


def test_data_goes_to_the_gpu_when_it_fits_in_a_share_of_the_trials_part() -> None:
    assert fits_on_device(int(80 * GIB * DEVICE_DATA_SHARE), 80 * GIB, 1.0)
    assert not fits_on_device(int(80 * GIB * DEVICE_DATA_SHARE) + 1, 80 * GIB, 1.0)
    # Four trials sharing the GPU: each has a quarter of its memory.
    assert not fits_on_device(int(80 * GIB * DEVICE_DATA_SHARE), 80 * GIB, 0.25)
    assert fits_on_device(int(20 * GIB * DEVICE_DATA_SHARE), 80 * GIB, 0.25)


@pytest.mark.parametrize(("overrides", "on_device", "channels_last"), [
    ([], True, False),  # a CPU has one memory; channels-last is for GPUs
    (["train.data_on_device=false"], True, False),
    (["train.channels_last=true"], True, True),
])
def test_a_cpu_trial_indexes_its_data_where_it_is(
    overrides: list[str], on_device: bool, channels_last: bool
) -> None:
    train = parse_spec({}, overrides).train
    placement = Placement.choose(train, torch.device("cpu"), _data())
    assert (placement.data_on_device, placement.channels_last) == (on_device, channels_last)
    assert placement.data_device == torch.device("cpu")


def test_a_batch_is_the_indexed_examples_in_the_models_layout() -> None:
    data = Dataset("toy", torch.arange(10 * 3 * 4 * 4, dtype=torch.float32).reshape(10, 3, 4, 4),
                   torch.arange(10), torch.zeros(1, 3, 4, 4), torch.zeros(1), 2)
    index = torch.tensor([7, 2])
    plain = Placement(torch.device("cpu")).batch(data.x_train, index)
    nhwc = Placement(torch.device("cpu"), channels_last=True).batch(data.x_train, index)
    assert torch.equal(plain, data.x_train[index]) and torch.equal(nhwc, plain)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert not plain.is_contiguous(memory_format=torch.channels_last)
    labels = Placement(torch.device("cpu"), channels_last=True).batch(data.y_train, index)
    assert labels.tolist() == [7, 2], "only image batches change layout"


def test_validation_batches_are_bounded_in_bytes_not_rows() -> None:
    from trialforge.train.batches import MAX_EVAL_ROWS, eval_rows

    assert eval_rows((1, 8, 8), "float32", 64) == MAX_EVAL_ROWS, "small sets: one pass"
    assert eval_rows((3, 64, 64), "float32", 64) == 85, "4 MiB of 64 px RGB images"
    assert eval_rows((3, 224, 224), "float32", 32) == 32, "never below the training batch"
    assert eval_rows((64,), "int64", 64) == MAX_EVAL_ROWS
