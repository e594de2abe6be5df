"""The quality score of a GAN: a Fréchet distance in the features of a fixed judge classifier.

FID proper uses Inception features, which need downloaded weights and images far bigger than
8x8 digits. Instead every sweep trains one small CNN on its own real images (seeded, so each
trial of a sweep gets the same judge) and measures generated images in the space of its
penultimate layer: a space where the classes of real images are well separated.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trialforge.models.cnn import cnn

# Part of the cache key: bump it when the judge's architecture or training changes.
JUDGE_VERSION = 1
_EPOCHS = 10
_BATCH_SIZE = 128
_LR = 5e-3
_FEATURE_BATCH = 1024


def make_judge(image_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The judge's architecture: a two-block CNN whose `features` end in 64 ReLU units."""
    return cnn(input_shape=tuple(image_shape), num_classes=num_classes, conv_blocks=2,
               channels=16, fc_width=64)


def fit_judge(x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int = 0) -> nn.Module:
    """Train the judge on real images `x` (N, C, H, W) with labels `y`; returned in eval mode.

    The global RNG is left as it was, so fitting a judge does not change the caller's draws.
    """
    x, y = x.detach().cpu().float(), y.detach().cpu().long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = make_judge(tuple(x.shape[1:]), num_classes)
        optimizer = torch.optim.Adam(judge.parameters(), lr=_LR)
        order_rng = torch.Generator().manual_seed(seed)
        judge.train()
        for _ in range(_EPOCHS):
            order = torch.randperm(len(y), generator=order_rng)
            for start in range(0, len(order), _BATCH_SIZE):
                index = order[start : start + _BATCH_SIZE]
                optimizer.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(judge(x[index]), y[index])
                torch.autograd.backward(loss)
                optimizer.step()
    return judge.eval()


@torch.no_grad()
def judge_features(judge: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Penultimate-layer features (N, 64) of `images`, computed in chunks on their device."""
    judge.eval()
    features = judge.features  # a FeaturesAndHead: the layers before the class logits
    assert isinstance(features, nn.Module)
    chunks = [features(images[start : start + _FEATURE_BATCH])
              for start in range(0, len(images), _FEATURE_BATCH)]
    return torch.cat(chunks)


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) of two feature sets (NaN if not finite).

    Tr sqrt(S1 S2) = Tr sqrt(R S2 R) with R = sqrt(S1): the latter is symmetric positive
    semi-definite, so symmetric eigendecompositions give it without complex round-off, and
    clipping their tiny negative eigenvalues (rank-deficient covariances) keeps it real.
    """
    real = real_features.detach().cpu().double().numpy()
    fake = fake_features.detach().cpu().double().numpy()
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        return float("nan")
    mu_real, mu_fake = real.mean(axis=0), fake.mean(axis=0)
    cov_real, cov_fake = _covariance(real), _covariance(fake)
    root_real = _sqrt_psd(cov_real)
    cross = np.linalg.eigvalsh(root_real @ cov_fake @ root_real)
    trace_sqrt = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    distance = float(((mu_real - mu_fake) ** 2).sum()
                     + np.trace(cov_real) + np.trace(cov_fake) - 2.0 * trace_sqrt)
    return max(distance, 0.0)


def cached_judge(
    cache_dir: Path, x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int
) -> dict[str, torch.Tensor]:
    """The judge's state dict for these images, fitted once and kept in `cache_dir`.

    The file name hashes the data's shape, its content, the seed and `JUDGE_VERSION`. It is
    written to a temporary file and renamed, so a trial never reads another's half-written
    file; two trials that both miss the cache fit the same judge and the last rename wins.
    """
    path = Path(cache_dir) / f"judge-{_cache_key(x, y, num_classes, seed)}.pt"
    if path.exists():
        state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
        return state
    state = {name: tensor.detach().cpu() for name, tensor
             in fit_judge(x, y, num_classes, seed).state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return state


def judge_from_state(
    state: dict[str, torch.Tensor], image_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """A judge rebuilt from `cached_judge`'s state dict, in eval mode."""
    judge = make_judge(tuple(image_shape), num_classes)
    judge.load_state_dict(state)
    return judge.eval()


def _cache_key(x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int) -> str:
    digest = hashlib.sha256()
    header = f"v{JUDGE_VERSION}|{tuple(x.shape)}|{tuple(y.shape)}|{num_classes}|{seed}|"
    digest.update(header.encode())
    digest.update(x.detach().cpu().float().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().long().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def _covariance(features: np.ndarray) -> np.ndarray:
    if len(features) < 2:
        return np.zeros((features.shape[1], features.shape[1]))
    return np.atleast_2d(np.cov(features, rowvar=False))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The square root of a symmetric positive semi-definite matrix (negatives clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T  # type: ignore[no-any-return]
