"""The pixel checker recovers every captioned attribute, also through blur and noise.

Measured (seed 11, 600 images, half striped): clean 100% on every attribute; with a 3×3 box
blur then Gaussian noise σ=10/255: shape 98.5%, colour/background/position/striped 100%.
"""

from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageFilter

from lcm_core.demo.checker import analyse, check
from lcm_core.demo.shapes import Attributes, sample

KEYS = ("shape", "colour", "background", "position", "striped")
COUNT = 600


def _degrade(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image.filter(ImageFilter.BoxBlur(1)), dtype=np.float32)
    pixels = pixels + rng.normal(0.0, 10.0, pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def _accuracy(degrade: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    right = Counter()
    for i in range(COUNT):
        image, caption, _ = sample(11, i, 0.5)
        result = check(_degrade(image, rng) if degrade else image, caption)
        right.update(key for key, ok in result.correct.items() if ok)
    return {key: right[key] / COUNT for key in KEYS}


def test_clean_images_are_read_perfectly():
    assert _accuracy(degrade=False) == {key: 1.0 for key in KEYS}


def test_blurred_noisy_images_are_read_at_least_97_percent_per_attribute():
    accuracy = _accuracy(degrade=True)
    assert min(accuracy.values()) >= 0.97, accuracy


def test_mismatching_captions_are_rejected_on_the_wrong_attribute_only():
    image, caption, attrs = sample(5, 0)
    assert check(image, caption).ok
    others = {"shape": "star" if attrs["shape"] != "star" else "circle",
              "colour": "white" if attrs["colour"] not in ("white", attrs["background"]) else "purple",
              "position": "center" if attrs["position"] != "center" else "top left",
              "striped": True}
    for key, value in others.items():
        wrong = Attributes(**{**attrs, key: value})
        result = check(image, wrong.caption())
        assert not result.ok and [k for k, ok in result.correct.items() if not ok] == [key]


@pytest.mark.parametrize("index", range(8))
def test_attributes_dict_and_analyse_agree(index):
    image, _, attrs = sample(2, index, 0.5)
    assert check(image, attrs).ok
    assert analyse(np.asarray(image))[0].as_dict() == attrs
