"""A fixed, deterministic feature extractor for shapes images and a numpy Fréchet distance.

Features (no learned model): 8-bin per-channel colour histograms, a 2×2 RGB thumbnail, and
moments of the foreground mask (pixels far from the border's median colour): area, centroid,
second moments and bounding-box fill;
and image quality cues: share of pixels near a palette colour, mean distance to it, mean gradient. `frechet_distance` is the FID formula on them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from .shapes import COLOURS

_BINS = 8
_THUMB = 2
_FOREGROUND = 40.0
_PURE = 20.0
_QUALITY_WEIGHT = 4.0
_PALETTE = np.array(list(COLOURS.values()), dtype=np.float64)


def image_features(image: Image.Image | np.ndarray) -> np.ndarray:
    """The feature vector (float64, 47 values) of one 64×64 RGB image."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    h, w, _ = pixels.shape
    hist = np.concatenate([np.histogram(pixels[..., c], bins=_BINS, range=(0, 256))[0] / (h * w) for c in range(3)])
    thumb = pixels.reshape(_THUMB, h // _THUMB, _THUMB, w // _THUMB, 3).mean(axis=(1, 3)).ravel() / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    mask = np.sqrt(((pixels - np.median(border, axis=0)) ** 2).sum(axis=-1)) > _FOREGROUND
    moments = np.zeros(8)
    if mask.any():
        ys, xs = np.nonzero(mask)
        y, x = ys / h, xs / w
        box = (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
        moments = np.array([mask.mean(), x.mean(), y.mean(), x.var() * 12, y.var() * 12, np.cov(x, y)[0, 1] * 12
                            if len(x) > 1 else 0.0, mask.sum() / box, (np.ptp(ys) + 1) / (np.ptp(xs) + 1)])
    near = np.sqrt(((pixels[:, :, None, :] - _PALETTE) ** 2).sum(axis=-1)).min(axis=-1)
    gradient = np.abs(np.diff(pixels, axis=0)).mean() + np.abs(np.diff(pixels, axis=1)).mean()
    quality = _QUALITY_WEIGHT * np.array([(near < _PURE).mean(), near.mean() / 255.0, gradient / 255.0])
    return np.concatenate([hist, thumb, moments, quality])


def dataset_features(images: Iterable[Image.Image | np.ndarray]) -> np.ndarray:
    """`[N, D]` features of many images."""
    return np.stack([image_features(image) for image in images])


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """‖μa−μb‖² + tr(Σa + Σb − 2(Σa Σb)^½), with tr((ΣaΣb)^½) computed as tr((√Σa Σb √Σa)^½)
    from symmetric eigendecompositions (exactly symmetric up to rounding, numpy only)."""
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two [N>=2, D] feature arrays of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    cross = np.linalg.eigvalsh((root_a @ cov_b @ root_a + (root_a @ cov_b @ root_a).T) / 2)
    trace_cross = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_cross)
