"""Family, prediction type and LCM detection from tensor names and shapes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from lcm_core.errors import ModelFormatError
from lcm_core.models.detect import detect_family
from lcm_core.models.load import load_checkpoint
from support.checkpoints import manifest_path


def manifest_shapes(name):
    return {k: tuple(v) for k, v in json.loads(manifest_path(name).read_text()).items()}


@pytest.mark.parametrize("manifest,family", [("sd15_single_file_keys.json", "sd15"),
                                             ("sdxl_single_file_keys.json", "sdxl")])
def test_real_key_layouts(manifest, family):
    det = detect_family(manifest_shapes(manifest))
    assert (det.family, det.prediction_type, det.layout) == (family, "epsilon", "ldm")
    assert det.has_vae and det.has_clip and not det.lcm_distilled


def test_lcm_unet_in_original_layout():
    shapes = manifest_shapes("sd15_single_file_keys.json")
    shapes["model.diffusion_model.time_embedding.cond_proj.weight"] = (1280, 256)
    det = detect_family(shapes)
    assert det.lcm_distilled and det.time_cond_proj_dim == 256


@pytest.mark.parametrize("change,message", [
    ({"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)}, "9 input channels"),
    ({"model.diffusion_model.label_emb.0.0.weight": (1280, 2560)}, "refiner"),
])
def test_unsupported_variants_are_named(change, message):
    shapes = manifest_shapes("sdxl_single_file_keys.json" if "label_emb" in str(change) else
                             "sd15_single_file_keys.json")
    if "label_emb" in str(change):
        shapes = {k: (v[0], 1280) if k.endswith("attn2.to_k.weight") else v for k, v in shapes.items()}
    shapes.update(change)
    with pytest.raises(ModelFormatError, match=message):
        detect_family(shapes)


def test_mixed_families_are_refused():
    shapes = manifest_shapes("sd15_single_file_keys.json")
    shapes["conditioner.embedders.1.model.positional_embedding"] = (77, 1280)
    with pytest.raises(ModelFormatError, match="another family"):
        detect_family(shapes)


@pytest.mark.parametrize("written,extra,metadata,expected", [
    ("sd2", {}, None, "sd2"),                                      # heuristic: std 0.02
    ("sd2-v", {}, None, "sd2-v"),                                  # heuristic: std 0.2
    ("sd2", {"v_pred": torch.tensor([])}, None, "sd2-v"),          # ComfyUI's marker key
    ("sd2", {}, {"modelspec.predict_key": "v"}, "sd2-v"),          # ComfyUI's saved metadata
    ("sd2-v", {}, {"modelspec.predict_key": "epsilon"}, "sd2"),    # metadata beats the heuristic
])
def test_sd2_epsilon_or_v(tmp_path, tiny_configs, tiny_single_file, written, extra, metadata, expected):
    source, _ = tiny_single_file(written)
    path = tmp_path / "sd2.safetensors"
    save_file({**load_file(str(source)), **extra}, str(path), metadata=metadata)
    model, clip, _ = load_checkpoint(path, dtype="fp32", device="cpu")
    prediction = "v_prediction" if expected == "sd2-v" else "epsilon"
    assert (model.family, model.prediction_type, clip.family) == (expected, prediction, expected)
    assert model.scheduler_config["prediction_type"] == prediction
