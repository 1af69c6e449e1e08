"""Headless LoadImage / SaveImage / PreviewImage / EmptyLatentImage behave like ComfyUI's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lcm_core.errors import PathEscapeError
from lcm_core.graph.formats import read_png_chunks
from lcm_core.graph.imagefiles import save_image_path
from lcm_core.graph.registry import node_classes
from support.graph_env import folders  # noqa: F401  (fixture)

NODES = node_classes()


def _image(h=16, w=24, seed=0):
    return torch.rand(1, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_save_names_count_after_existing_files_and_embed_chunks(folders):  # noqa: F811
    (folders.output_dir / "shot_00007_.png").write_bytes(b"old")
    (folders.output_dir / "shot_notanumber_.png").write_bytes(b"other")
    node = NODES["SaveImage"]()
    prompt, extra = {"1": {"class_type": "X", "inputs": {}}}, {"workflow": {"nodes": []}, "note": "hi"}
    out = node.save_images(torch.cat([_image(), _image(seed=1)]), "shot", prompt=prompt, extra_pnginfo=extra)
    assert out == {"ui": {"images": [{"filename": "shot_00008_.png", "subfolder": "", "type": "output"},
                                     {"filename": "shot_00009_.png", "subfolder": "", "type": "output"}]}}
    assert (folders.output_dir / "shot_00007_.png").read_bytes() == b"old"
    chunks = read_png_chunks(folders.output_dir / "shot_00008_.png")
    assert json.loads(chunks["prompt"]) == prompt
    assert json.loads(chunks["workflow"]) == {"nodes": []} and json.loads(chunks["note"]) == "hi"
    saved = np.asarray(Image.open(folders.output_dir / "shot_00009_.png"))
    expected = np.clip(255.0 * _image(seed=1)[0].numpy(), 0, 255).astype(np.uint8)
    assert np.array_equal(saved, expected)


def test_save_into_subfolder_and_refuse_escape(folders):  # noqa: F811
    out = NODES["SaveImage"]().save_images(_image(), "run/a")
    assert out["ui"]["images"][0] == {"filename": "a_00001_.png", "subfolder": "run", "type": "output"}
    assert (folders.output_dir / "run" / "a_00001_.png").is_file()
    with pytest.raises(PathEscapeError):
        NODES["SaveImage"]().save_images(_image(), "../outside")


def test_save_never_overwrites_a_file_that_appears(folders, monkeypatch):  # noqa: F811
    from lcm_core.graph import imagefiles

    monkeypatch.setattr(imagefiles, "save_image_path", lambda *a: (folders.output_dir, "race", 1, ""))
    (folders.output_dir / "race_00001_.png").write_bytes(b"theirs")
    out = NODES["SaveImage"]().save_images(_image(), "race")
    assert out["ui"]["images"][0]["filename"] == "race_00002_.png"
    assert (folders.output_dir / "race_00001_.png").read_bytes() == b"theirs"


def test_counter_matches_comfyui_rule(tmp_path):
    for name in ("ComfyUI_00003_.png", "ComfyUI_00010_.png", "ComfyUIx_00099_.png", "Other_00050_.png"):
        (tmp_path / name).write_bytes(b"")
    assert save_image_path("ComfyUI", tmp_path)[1:] == ("ComfyUI", 11, "")
    assert save_image_path("%width%x%height%", tmp_path, 24, 16)[1] == "24x16"


def test_preview_goes_to_temp(folders):  # noqa: F811
    out = NODES["PreviewImage"]().save_images(_image())
    record = out["ui"]["images"][0]
    assert record["type"] == "temp" and record["filename"].startswith("ComfyUI_temp_")
    assert (folders.temp_dir / record["filename"]).is_file()


def test_load_image_alpha_becomes_inverted_mask(folders):  # noqa: F811
    rgba = np.random.default_rng(0).integers(0, 256, (12, 20, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folders.input_dir / "a.png")
    assert NODES["LoadImage"].INPUT_TYPES()["required"]["image"][0] == ["a.png"]
    image, mask = NODES["LoadImage"]().load_image("a.png")
    assert image.shape == (1, 12, 20, 3) and image.dtype == torch.float32
    assert torch.equal(image[0], torch.from_numpy(rgba[..., :3].astype(np.float32) / 255.0))
    assert torch.allclose(mask[0], 1.0 - torch.from_numpy(rgba[..., 3].astype(np.float32) / 255.0))


def test_load_image_without_alpha_has_64x64_zero_mask_and_exif_transpose(folders):  # noqa: F811
    pixels = np.zeros((10, 30, 3), dtype=np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.fromarray(pixels).save(folders.input_dir / "r.jpg", exif=exif, quality=100)
    image, mask = NODES["LoadImage"]().load_image("r.jpg")
    assert image.shape == (1, 30, 10, 3)
    assert torch.equal(mask, torch.zeros(1, 64, 64))


def test_load_image_is_changed_follows_file_content(folders):  # noqa: F811
    path = folders.input_dir / "c.png"
    Image.new("RGB", (4, 4), "red").save(path)
    before = NODES["LoadImage"].IS_CHANGED("c.png")
    Image.new("RGB", (4, 4), "blue").save(path)
    assert NODES["LoadImage"].IS_CHANGED("c.png") != before
    assert NODES["LoadImage"].VALIDATE_INPUTS("c.png") is True
    assert NODES["LoadImage"].VALIDATE_INPUTS("../c.png") == "Invalid image file: ../c.png"


def test_empty_latent_shape_and_zeros():
    (latent,) = NODES["EmptyLatentImage"]().generate(96, 64, 3)
    assert torch.equal(latent["samples"], torch.zeros(3, 4, 8, 12))
