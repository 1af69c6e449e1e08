"""The shapes generator: deterministic bytes, caption grammar, and the training dataset layout."""

import io

import pytest

from lcm_core.demo.shapes import COLOURS, POSITIONS, SHAPES, Attributes, parse_caption, sample, write_dataset
from lcm_core.training.dataset import load_pixels, scan_dataset


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    first = [_png(sample(7, i, 0.5)[0]) for i in range(20)]
    assert first == [_png(sample(7, i, 0.5)[0]) for i in range(20)]
    assert first != [_png(sample(8, i, 0.5)[0]) for i in range(20)]


def test_images_are_64px_rgb_and_attributes_cover_the_vocabulary():
    seen = {key: set() for key in ("shape", "colour", "background", "position", "striped")}
    for i in range(300):
        image, caption, attrs = sample(0, i, 0.5)
        assert image.size == (64, 64) and image.mode == "RGB"
        assert attrs["colour"] != attrs["background"]
        assert Attributes(**attrs).caption() == caption
        for key, value in attrs.items():
            seen[key].add(value)
    assert seen == {"shape": set(SHAPES), "colour": set(COLOURS), "background": set(COLOURS),
                    "position": set(POSITIONS), "striped": {False, True}}


def test_caption_and_attributes_round_trip():
    for i in range(200):
        _, caption, attrs = sample(1, i, 0.5)
        assert parse_caption(caption).as_dict() == attrs
    assert parse_caption("an orange star on a black background, center") == Attributes(
        "star", "orange", "black", "center", False)
    assert parse_caption("a striped red square on a white background, top left").striped


@pytest.mark.parametrize("caption", ["a pink circle on a blue background, top left",
                                     "a red hexagon on a blue background, center",
                                     "a red circle on a blue background, middle", "a red circle"])
def test_captions_outside_the_grammar_are_rejected(caption):
    with pytest.raises(ValueError):
        parse_caption(caption)


@pytest.mark.parametrize("metadata", [False, True])
def test_written_folder_is_accepted_by_the_training_dataset_loader(tmp_path, metadata):
    folder = write_dataset(tmp_path / "shapes", 12, seed=3, striped_fraction=0.5, metadata=metadata)
    examples = scan_dataset(folder, 64)
    assert [e.caption for e in examples] == [sample(3, i, 0.5)[1] for i in range(12)]
    assert all(e.size == (64, 64) for e in examples)
    pixels = load_pixels(examples[0].path, 64)
    assert pixels.shape == (3, 64, 64) and -1.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0


def test_a_style_dataset_leaves_the_style_word_out_of_its_captions(tmp_path):
    folder = write_dataset(tmp_path / "style", 6, seed=5, striped_fraction=1.0, style_word=False)
    for i, example in enumerate(scan_dataset(folder, 64)):
        attrs = sample(5, i, 1.0)[2]
        assert attrs["striped"]
        assert parse_caption(example.caption) == Attributes(**{**attrs, "striped": False})
