"""Load LCM Checkpoint inside a stand-in ComfyUI host: combo contents, outputs, errors."""

from __future__ import annotations

import shutil

import pytest

from support.host import comfy_host


@pytest.fixture
def host_with_models(tmp_path, tiny_diffusers_folder):
    with comfy_host(tmp_path) as (pack, record, dirs):
        models = dirs["models"]
        shutil.copytree(tiny_diffusers_folder("sd15", lcm=True)[0], models / "diffusers" / "LCM_tiny")
        shutil.copytree(tiny_diffusers_folder("sd15")[0], models / "checkpoints" / "sd15_tiny_folder")
        unet_only = models / "diffusers" / "lcm_unet_only"
        shutil.copytree(tiny_diffusers_folder("sd15", lcm=True, unet_only=True, seed=2)[0], unet_only)
        (models / "checkpoints" / "sub").mkdir(parents=True, exist_ok=True)
        (models / "checkpoints" / "sub" / "model.safetensors").write_bytes(b"")
        yield pack, models


def test_combo_lists_files_and_diffusers_folders(host_with_models):
    pack, _ = host_with_models
    node = pack.NODE_CLASS_MAPPINGS["LCMCheckpointLoader"]
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["LCMCheckpointLoader"] == "Load LCM Checkpoint"
    spec = node.INPUT_TYPES()
    names = spec["required"]["ckpt_name"][0]
    shipped = ["shapes_sd_demo"]  # the pack's demo model, after the user's own folders
    assert names == ["sub/model.safetensors", "LCM_tiny", "lcm_unet_only", "sd15_tiny_folder"] + shipped
    assert spec["required"]["dtype"][0] == ["auto", "fp16", "bf16", "fp32"]
    assert spec["optional"]["base_ckpt_name"][0] == ["none"] + names
    for section in spec.values():
        for _, options in section.values():
            assert options.get("tooltip")
    assert node.RETURN_TYPES == ("LCM_MODEL", "LCM_CLIP", "LCM_VAE") and node.CATEGORY.startswith("LCM/")


def test_node_loads_lcm_folder_and_unet_only_with_base(host_with_models):
    pack, _ = host_with_models
    node = pack.NODE_CLASS_MAPPINGS["LCMCheckpointLoader"]()
    model, clip, vae = node.load_checkpoint("LCM_tiny", "fp32")
    assert model.lcm_distilled and model.method == "lcm" and model.family == "sd15"
    assert type(model).__name__ == "LCMModel" and len(clip.text_encoders) == 1 and vae.scaling_factor == 0.18215
    again = node.load_checkpoint("LCM_tiny", "fp32", "none")
    assert again[0] is model
    model2, clip2, _ = node.load_checkpoint("lcm_unet_only", "fp32", "sd15_tiny_folder")
    assert model2.lcm_distilled and clip2.text_encoders[0] is not clip.text_encoders[0]


def test_node_errors_name_the_input(host_with_models):
    pack, _ = host_with_models
    node = pack.NODE_CLASS_MAPPINGS["LCMCheckpointLoader"]()
    errors = pack.nodes._engine.engine("errors")
    with pytest.raises(errors.ModelFormatError) as info:
        node.load_checkpoint("lcm_unet_only", "fp32")
    assert info.value.input_name == "base_ckpt_name"
    with pytest.raises(errors.PathEscapeError) as info:
        node.load_checkpoint("../escape", "fp32")
    assert info.value.input_name == "ckpt_name"
