"""Recover a shapes image's attributes from its pixels, and score them against a caption.

Background: median of the border ring → nearest named colour. Shape colour: median of the
pixels farthest from the background → nearest other named colour. Mask: pixels whose
projection on the background→shape-colour segment passes 0.3, cleaned by a 3×3 median.
Position: mask centroid → nearest anchor. Shape: mask area / bounding-box area
(square ≈ 1, circle ≈ π/4, triangle ≈ ½, star ≈ ⅓). Striped: share of the eroded mask's
pixels that sit near the half-tone shade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .shapes import COLOURS, POSITIONS, Attributes, parse_caption

_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _NAMES], dtype=np.float32)
_FILL_SQUARE, _FILL_CIRCLE, _BOTTOM_WIDE, _TRIANGLE_DROP = 0.89, 0.67, 0.655, 0.56
_STRIPED_SHARE = 0.25
_FAR = 30.0


@dataclass(frozen=True)
class Check:
    """Recovered attributes, per-attribute correctness against the expected ones, and `ok` (all correct)."""

    found: Attributes
    correct: dict[str, bool]
    fill_ratio: float

    @property
    def ok(self) -> bool:
        return all(self.correct.values())


def _nearest(colour: np.ndarray, exclude: str | None = None) -> str:
    dist = ((_PALETTE - colour) ** 2).sum(axis=1)
    if exclude is not None:
        dist[_NAMES.index(exclude)] = np.inf
    return _NAMES[int(np.argmin(dist))]


def _best_segment(pixels: np.ndarray, bg: np.ndarray, background: str) -> str:
    """The named colour whose segment from the background passes closest to `pixels` (shades and
    anti-aliased edges lie on that segment too)."""
    best, best_cost = _NAMES[0], np.inf
    for name, colour in zip(_NAMES, _PALETTE):
        if name == background:
            continue
        direction = colour - bg
        t = np.clip(((pixels - bg) @ direction) / float(direction @ direction), 0.0, 1.0)
        cost = float(np.sqrt(((pixels - bg - t[:, None] * direction) ** 2).sum(axis=1)).sum())
        if cost < best_cost:
            best, best_cost = name, cost
    return best


def _filter3(mask: np.ndarray, reduce) -> np.ndarray:
    padded = np.pad(mask, 1, mode="edge")
    h, w = mask.shape
    stack = np.stack([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    return reduce(stack, axis=0)


def analyse(image: Image.Image | np.ndarray) -> tuple[Attributes, float]:
    """The attributes an image shows and its mask's fill ratio."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    background = _nearest(np.median(border, axis=0))
    bg = np.array(COLOURS[background], dtype=np.float32)
    dist = np.sqrt(((pixels - bg) ** 2).sum(axis=-1))
    far = dist >= max(np.quantile(dist, 0.99) * 0.5, _FAR)
    colour = _best_segment(pixels[far] if far.any() else pixels.reshape(-1, 3), bg, background)
    direction = np.array(COLOURS[colour], dtype=np.float32) - bg
    t = ((pixels - bg) @ direction) / float(direction @ direction)
    mask = _filter3(t > 0.3, np.median) > 0.5
    if not mask.any():
        mask = far
    ys, xs = np.nonzero(mask)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = float(mask.sum() / box)
    height = ys.max() - ys.min() + 1
    drop = float((ys.mean() - ys.min()) / max(height - 1, 1))
    bottom = float(mask[ys.max() + 1 - max(height // 4, 1):ys.max() + 1, xs.min():xs.max() + 1].mean())
    if fill > _FILL_SQUARE:
        shape = "square"
    elif bottom > _BOTTOM_WIDE:
        shape = "triangle" if drop > _TRIANGLE_DROP else "circle"
    else:
        shape = "circle" if fill > _FILL_CIRCLE else "star"
    centroid = np.array([xs.mean(), ys.mean()])
    position = min(POSITIONS, key=lambda name: float(((np.array(POSITIONS[name]) - centroid) ** 2).sum()))
    interior = _filter3(mask, np.min)
    striped = bool(interior.any() and (t[interior] < 0.75).mean() > _STRIPED_SHARE)
    return Attributes(shape, colour, background, position, striped), fill


def check(image: Image.Image | np.ndarray, expected: str | Attributes | dict) -> Check:
    """Compare what `image` shows with a caption, `Attributes` or attributes dict."""
    if isinstance(expected, str):
        expected = parse_caption(expected)
    elif isinstance(expected, dict):
        expected = Attributes(**expected)
    found, fill = analyse(image)
    correct = {key: getattr(found, key) == getattr(expected, key)
               for key in ("shape", "colour", "background", "position", "striped")}
    return Check(found, correct, fill)
