"""Bad datasets are refused before the first step with errors that name the files and
the fix; good ones are read from .txt captions or metadata.jsonl and center-cropped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lcm_core.errors import InputError
from lcm_core.training.dataset import load_pixels, scan_dataset
from support.training_models import write_dataset


def test_txt_captions_and_metadata_jsonl_give_the_same_examples(tmp_path):
    txt = scan_dataset(write_dataset(tmp_path / "txt", 4), 32)
    meta = scan_dataset(write_dataset(tmp_path / "meta", 4, jsonl=True), 32)
    assert [(e.path.name, e.caption) for e in txt] == [(e.path.name, e.caption) for e in meta]
    assert txt[0].caption == "a red square" and txt[0].size == (40, 40)


@pytest.mark.parametrize("case, message", [
    ("missing_folder", "does not exist"),
    ("empty", "holds no images"),
    ("no_caption", "1 image\\(s\\) .* have no caption"),
    ("unreadable", "cannot be read"),
    ("too_small", "smaller than the training resolution 32"),
    ("bad_jsonl", "metadata.jsonl .* bad line"),
    ("jsonl_escape", "bad line"),
])
def test_bad_datasets_are_refused_with_the_files_named(tmp_path, case, message):
    folder = tmp_path / "ds"
    if case != "missing_folder":
        folder.mkdir()
    if case in ("no_caption", "unreadable", "too_small"):
        write_dataset(folder, 3)
    if case == "no_caption":
        (folder / "img001.txt").unlink()
    if case == "unreadable":
        (folder / "img002.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    if case == "too_small":
        Image.new("RGB", (48, 20)).save(folder / "img001.png")
    if case == "bad_jsonl":
        write_dataset(folder, 2, jsonl=True)
        (folder / "metadata.jsonl").write_text('{"file_name": "img000.png", "text": "x"}\nnot json\n')
    if case == "jsonl_escape":
        write_dataset(folder, 2, jsonl=True)
        (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "../x.png", "text": "x"}) + "\n")
    with pytest.raises(InputError, match=message) as info:
        scan_dataset(folder, 32)
    assert info.value.input_name == "dataset_dir"
    if case in ("no_caption", "unreadable", "too_small"):
        assert "img00" in info.value.details
    if case == "jsonl_escape":
        assert "outside the dataset folder" in info.value.details


def test_training_refuses_a_bad_dataset_before_loading_anything(tmp_path, monkeypatch):
    from lcm_core.training import TrainingConfig, loop, train_lcd

    folder = tmp_path / "ds"
    folder.mkdir()
    monkeypatch.setattr(loop, "make_accelerator", lambda config: pytest.fail("reached the training set-up"))

    class Model:
        family = "sd15"

    with pytest.raises(InputError, match="holds no images"):
        train_lcd(Model(), None, None, TrainingConfig(dataset_dir=str(folder), resolution=32, lora_rank=4))


def test_pixels_are_resized_on_the_shorter_side_and_center_cropped(tmp_path):
    array = np.zeros((40, 80, 3), dtype=np.uint8)
    array[:, 20:60] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    pixels = load_pixels(tmp_path / "wide.png", 20)
    assert pixels.shape == (3, 20, 20)
    assert torch.allclose(pixels[:, :, 2:-2], torch.ones(3, 20, 16)), "the white centre survives the crop"
    assert pixels.min() >= -1 and pixels.max() <= 1
