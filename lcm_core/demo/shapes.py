"""Procedural captioned shapes: 64×64 RGB images, deterministic from (seed, index).

One shape (circle, square, triangle, star) in a named colour on a named background at one
of five named positions, optionally with horizontal stripes ("striped" in the caption).
Captions read like "a red circle on a blue background, top left".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SUPERSAMPLE = 4
STRIPE_WIDTH = 3
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (250, 230, 50),
    "white": (245, 245, 245), "black": (15, 15, 15), "purple": (140, 40, 180), "orange": (245, 125, 10),
}
SHAPES = ("circle", "square", "triangle", "star")
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (16.0, 16.0), "top right": (48.0, 16.0), "bottom left": (16.0, 48.0),
    "bottom right": (48.0, 48.0), "center": (32.0, 32.0),
}
RADIUS_RANGE = (9.0, 13.0)
JITTER = 2.0
STAR_INNER = 0.4


@dataclass(frozen=True)
class Attributes:
    """What one image shows; `caption()` and `parse_caption` convert to and from text."""

    shape: str
    colour: str
    background: str
    position: str
    striped: bool = False

    def caption(self, style_word: bool = True) -> str:
        """The caption; `style_word=False` leaves "striped" out (a style LoRA's captions)."""
        style = "striped " if self.striped and style_word else ""
        return f"{_article(style + self.colour)} {style}{self.colour} {self.shape} on {_article(self.background)} " \
               f"{self.background} background, {self.position}"

    def as_dict(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "background": self.background,
                "position": self.position, "striped": self.striped}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


_CAPTION = re.compile(r"^an? (?P<striped>striped )?(?P<colour>\w+) (?P<shape>\w+) on an? (?P<background>\w+) "
                      r"background, (?P<position>[a-z ]+)$")


def parse_caption(caption: str) -> Attributes:
    """The attributes a caption names; `ValueError` when it is not in the generator's grammar."""
    match = _CAPTION.match(caption.strip().lower())
    if (match is None or match["colour"] not in COLOURS or match["background"] not in COLOURS
            or match["shape"] not in SHAPES or match["position"] not in POSITIONS):
        raise ValueError(f"not a shapes caption: {caption!r}")
    return Attributes(match["shape"], match["colour"], match["background"], match["position"],
                      bool(match["striped"]))


def random_attributes(rng: np.random.Generator, striped_fraction: float = 0.0) -> Attributes:
    """Uniform shape, position and colour pair (shape colour ≠ background)."""
    names = list(COLOURS)
    colour, background = rng.choice(len(names), size=2, replace=False)
    return Attributes(SHAPES[rng.integers(len(SHAPES))], names[colour], names[background],
                      list(POSITIONS)[rng.integers(len(POSITIONS))], bool(rng.random() < striped_fraction))


def _outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        s = r * 0.85
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))) for a in (-90, 30, 150)]
    if shape == "star":
        return [(cx + rr * math.cos(math.radians(-90 + 36 * k)), cy + rr * math.sin(math.radians(-90 + 36 * k)))
                for k in range(10) for rr in [r if k % 2 == 0 else r * STAR_INNER]]
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Anti-aliased coverage 0..1 of the shape, `[SIZE, SIZE]`."""
    k = SUPERSAMPLE
    canvas = Image.new("L", (SIZE * k, SIZE * k), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([(cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k], fill=255)
    else:
        draw.polygon([(x * k, y * k) for x, y in _outline(shape, cx, cy, r)], fill=255)
    hi = np.asarray(canvas, dtype=np.float32) / 255.0
    return hi.reshape(SIZE, k, SIZE, k).mean(axis=(1, 3))


def render(attrs: Attributes, rng: np.random.Generator) -> Image.Image:
    """The image of `attrs`, with radius and position jitter drawn from `rng`."""
    r = float(rng.uniform(*RADIUS_RANGE))
    ax, ay = POSITIONS[attrs.position]
    cx, cy = ax + rng.uniform(-JITTER, JITTER), ay + rng.uniform(-JITTER, JITTER)
    cover = _coverage(attrs.shape, cx, cy, r)[..., None]
    bg = np.array(COLOURS[attrs.background], dtype=np.float32)
    fg = np.broadcast_to(np.array(COLOURS[attrs.colour], dtype=np.float32), (SIZE, SIZE, 3)).copy()
    if attrs.striped:
        shade = (np.arange(SIZE) // STRIPE_WIDTH) % 2 == 1
        fg[shade] = 0.5 * fg[shade] + 0.5 * bg
    pixels = bg * (1.0 - cover) + fg * cover
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def sample(seed: int, index: int, striped_fraction: float = 0.0) -> tuple[Image.Image, str, dict]:
    """(image, caption, attributes dict) of example `index` of the dataset of `seed`."""
    rng = np.random.default_rng([seed, index])
    attrs = random_attributes(rng, striped_fraction)
    return render(attrs, rng), attrs.caption(), attrs.as_dict()


def write_dataset(folder: str | Path, count: int, seed: int = 0, striped_fraction: float = 0.0,
                  metadata: bool = False, style_word: bool = True) -> Path:
    """Write `count` examples as `NNNNN.png` + same-named `.txt` captions (or one `metadata.jsonl`),
    the layouts `lcm_core.training.dataset.scan_dataset` reads; `style_word=False` keeps
    "striped" out of the captions."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        image, _, attrs = sample(seed, i, striped_fraction)
        caption = Attributes(**attrs).caption(style_word)
        name = f"{i:05d}.png"
        image.save(folder / name)
        if metadata:
            lines.append(json.dumps({"file_name": name, "text": caption}))
        else:
            (folder / name).with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    if metadata:
        (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
