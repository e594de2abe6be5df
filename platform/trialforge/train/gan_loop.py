"""The epoch loop of one GAN trial: `train_loop`'s shape, with two networks and a FID score.

Build both networks, restore the last checkpoint if Ray restarted the trial, then per epoch
train (a discriminator step, then a generator step, per batch), score the generator by the
Fréchet distance of its images to the validation images in the judge's features, and report
metrics, a checkpoint and a grid of samples. Batches and noise are seeded by (seed, epoch), so
a resumed trial trains exactly as an uninterrupted one would.
"""

from __future__ import annotations

import functools
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from trialforge.figures import Figure, image_figure
from trialforge.models.gan import build_gan
from trialforge.spec import GANConfig
from trialforge.train.batches import epoch_batches
from trialforge.train.compilation import compile_errors, compile_model
from trialforge.train.contract import TrialCheckpoint, TrialState
from trialforge.train.evaluation import parameter_count
from trialforge.train.judge import fit_judge, frechet_distance, judge_features, judge_from_state
from trialforge.train.loop import report_restored_end, unwrap
from trialforge.train.placement import Placement

if TYPE_CHECKING:
    from trialforge.data.dataset import Dataset
    from trialforge.spec import SweepSpec
    from trialforge.train.session import TrialSession

GRID_SIDE = 8  # the samples image is GRID_SIDE x GRID_SIDE generated images
GRID_ZOOM = 4  # each image upscaled this much (nearest neighbour): 8x8 digits are tiny
_GRID_GAP = 255  # 1-px white lines between the images
_NOISE_SEED = 7_919  # offset of the fixed FID noise's seed from the spec's seed


def gan_loop(
    spec: SweepSpec,
    session: TrialSession,
    data: Dataset,
    judge_state: dict[str, torch.Tensor] | None,
) -> None:
    """Train one GAN trial of `spec` (its knobs already set), reporting each epoch to `session`.

    `judge_state` is the sweep's cached judge (`cached_judge`); None fits one for this trial.
    """
    torch.manual_seed(spec.seed)
    config = _gan_config(spec)
    image_shape = data.input_shape
    gen, disc = build_gan(config.model_dump(exclude={"family"}), image_shape)
    g_optimizer = _adam(gen, config.g_lr, config.g_beta1, config.g_beta2)
    d_optimizer = _adam(disc, config.d_lr, config.d_beta1, config.d_beta2)

    first_epoch = 1
    restored = session.restored_checkpoint()
    if restored is not None:
        gen.load_state_dict(restored["model"])
        disc.load_state_dict(restored["discriminator"])
        first_epoch = int(restored["epoch"]) + 1

    if judge_state is None:
        judge = fit_judge(data.x_train, data.y_train, data.num_classes, seed=spec.seed)
    else:
        judge = judge_from_state(judge_state, image_shape, data.num_classes)
    params = float(parameter_count(gen))
    placement = Placement.choose(spec.train, session.device, data.nbytes)
    gen, disc = (session.prepare_model(compile_model(placement.place_model(net),
                                                     spec.train.compile))
                 for net in (gen, disc))
    if restored is not None:
        # Once the parameters are on their device: Adam's moments are loaded onto it too.
        g_optimizer.load_state_dict(restored["g_optimizer"])
        d_optimizer.load_state_dict(restored["d_optimizer"])
    if report_restored_end(session, restored):
        return
    data = placement.place_data(data)
    judge = judge.to(session.device)
    real_features = judge_features(judge, placement.batch(data.x_val, slice(None)))
    noise = fixed_noise(max(len(data.x_val), GRID_SIDE**2), config.latent_dim, spec.seed)
    noise = noise.to(session.device)
    for epoch in range(first_epoch, spec.train.epochs + 1):
        started = time.perf_counter()
        # Noise and dropout masks: reproducible on resume, and different on each worker.
        torch.manual_seed(spec.seed * 100_003 + epoch + 1_000_003 * session.rank)
        with compile_errors(spec.train.compile, "gan"):
            d_loss, g_loss = train_epoch(gen, disc, (g_optimizer, d_optimizer), data, spec,
                                         epoch, session, placement)
        metrics: dict[str, float] = {"epoch": epoch, "d_loss": d_loss, "g_loss": g_loss,
                                     "params": params}
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            _report_diverged(session, metrics, started)
            return
        session.sync_buffers(unwrap(gen))
        session.sync_buffers(unwrap(disc))
        with compile_errors(spec.train.compile, "gan"):
            fakes, latency_us = generate(unwrap(gen), noise)
        val_fid = frechet_distance(real_features, judge_features(judge, fakes[: len(data.x_val)]))
        if not math.isfinite(val_fid):  # finite losses, but the generator's images are not
            _report_diverged(session, {**metrics, "val_fid": val_fid}, started)
            return
        metrics.update(val_fid=val_fid, latency_us=latency_us,
                       epoch_seconds=time.perf_counter() - started)
        checkpoint: TrialCheckpoint = {
            "model": unwrap(gen).state_dict(),  # the generator: what a GAN sweep registers
            "discriminator": unwrap(disc).state_dict(),
            "g_optimizer": g_optimizer.state_dict(),
            "d_optimizer": d_optimizer.state_dict(),
            "epoch": epoch,
            # With the spec, enough to rebuild both nets (registry.versions).
            "input_shape": list(image_shape),
            "num_classes": 0,
            "example_shape": [config.latent_dim],  # a generator takes noise
            "latent_dim": config.latent_dim,
        }
        final = epoch == spec.train.epochs
        checkpoint["final_metrics"] = metrics if final else None
        # Made on the reporter thread, for a best epoch only.
        samples = functools.partial(_samples_figure, fakes[: GRID_SIDE**2])
        session.report(metrics, checkpoint,
                       state=TrialState.COMPLETED if final else TrialState.RUNNING,
                       figures={"samples": samples})


def train_epoch(
    gen: nn.Module,
    disc: nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    data: Dataset,
    spec: SweepSpec,
    epoch: int,
    session: TrialSession,
    placement: Placement,
) -> tuple[float, float]:
    """One pass over this worker's shard; mean (d_loss, g_loss) over all workers (NaN if none).

    `optimizers` are the generator's and the discriminator's, in that order; `placement`
    brings each batch of real images to the device.

    Non-saturating losses: D learns real -> 1, fake -> 0; G learns to make D say 1 on fakes.
    """
    gen.train()
    disc.train()
    g_optimizer, d_optimizer = optimizers
    loss_fn = nn.BCEWithLogitsLoss()
    latent_dim = _gan_config(spec).latent_dim
    sums = torch.zeros(3, device=session.device)  # d_loss * n, g_loss * n, n
    for index in epoch_batches(len(data.x_train), spec, epoch, session, placement.data_device):
        real = placement.batch(data.x_train, index)
        fake = gen(torch.randn(len(real), latent_dim, device=session.device))
        d_loss = _discriminator_step(disc, d_optimizer, loss_fn, real, fake)
        g_loss = _generator_step(disc, g_optimizer, loss_fn, fake)
        sums += torch.stack([d_loss * len(real), g_loss * len(real),
                             torch.tensor(float(len(real)), device=session.device)])
    # Divergence is judged once per epoch on the summed losses, so every worker agrees on it.
    d_sum, g_sum, count = session.all_reduce_sum(sums).tolist()
    if not count:
        return math.nan, math.nan
    return d_sum / count, g_sum / count


def _discriminator_step(
    disc: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    # Real and fake go through D separately: with BatchNorm, a mixed batch leaks which is which.
    real_logits, fake_logits = disc(real), disc(fake.detach())
    loss: torch.Tensor = (loss_fn(real_logits, torch.ones_like(real_logits))
                          + loss_fn(fake_logits, torch.zeros_like(fake_logits)))
    torch.autograd.backward(loss)
    optimizer.step()
    return loss.detach()


def _generator_step(
    disc: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, fake: torch.Tensor
) -> torch.Tensor:
    # D's gradients from this pass are discarded (its next step zeroes them); they are still
    # computed so that a DDP-wrapped D sees every parameter used in each backward.
    optimizer.zero_grad(set_to_none=True)
    logits = disc(fake)
    loss: torch.Tensor = loss_fn(logits, torch.ones_like(logits))
    torch.autograd.backward(loss)
    optimizer.step()
    return loss.detach()


def fixed_noise(count: int, latent_dim: int, seed: int) -> torch.Tensor:
    """The noise every epoch scores and draws samples from: the same for every trial of a seed."""
    generator = torch.Generator().manual_seed(seed + _NOISE_SEED)
    return torch.randn(count, latent_dim, generator=generator)


@torch.no_grad()
def generate(gen: nn.Module, noise: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Images of `noise` in eval mode, and the forward time per image in microseconds."""
    gen.eval()
    _synchronize(noise.device)
    started = time.perf_counter()
    images = gen(noise)
    _synchronize(noise.device)
    seconds = time.perf_counter() - started
    return images, seconds / max(len(noise), 1) * 1e6


def _samples_figure(images: torch.Tensor) -> Figure:
    return image_figure(sample_grid(images))


def sample_grid(images: torch.Tensor) -> np.ndarray:
    """A uint8 grid of up to 8x8 images in [0, 1], each zoomed x4, 1-px gaps between them.

    (H, W) for grey images, (H, W, 3) for colour ones; other channel counts are averaged.
    """
    images = images.detach().float().cpu().clamp(0.0, 1.0)[: GRID_SIDE**2]
    if images.shape[1] != 3:
        images = images.mean(dim=1, keepdim=True)
    pixels = (images * 255.0).round().to(torch.uint8)
    pixels = pixels.repeat_interleave(GRID_ZOOM, dim=2).repeat_interleave(GRID_ZOOM, dim=3)
    channels, height, width = pixels.shape[1:]
    side = GRID_SIDE * height + GRID_SIDE - 1, GRID_SIDE * width + GRID_SIDE - 1
    grid = torch.full((channels, *side), _GRID_GAP, dtype=torch.uint8)
    for index, image in enumerate(pixels):
        row, column = divmod(index, GRID_SIDE)
        top, left = row * (height + 1), column * (width + 1)
        grid[:, top : top + height, left : left + width] = image
    array: np.ndarray = grid.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array[:, :, 0] if channels == 1 else array)


def _report_diverged(session: TrialSession, metrics: dict[str, float], started: float) -> None:
    nan = math.nan
    session.report(
        {"val_fid": nan, "latency_us": nan, **metrics,
         "epoch_seconds": time.perf_counter() - started},
        state=TrialState.DIVERGED,
    )


def _gan_config(spec: SweepSpec) -> GANConfig:
    if not isinstance(spec.model, GANConfig):
        raise TypeError(f"gan_loop trains family 'gan', not {spec.model.family!r}")
    return spec.model


def _adam(model: nn.Module, lr: float, beta1: float, beta2: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, beta2))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
