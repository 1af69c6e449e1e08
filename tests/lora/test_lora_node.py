"""The Apply LoRA (LCM) node: declaration, folder combo, and one engine call."""

from __future__ import annotations

import pytest
import torch

from lcm_core import paths
from lcm_core.errors import PathEscapeError
from nodes.lora import LCMLoraLoader
from support.lora_files import factors, model_handles, save, tiny_models, write


@pytest.fixture
def models_dir(tmp_path):
    paths.configure(paths.LocalFolders(tmp_path))
    (tmp_path / "loras" / "sub").mkdir(parents=True)
    yield tmp_path
    paths.configure(None)


def test_declaration_lists_safetensors_loras(models_dir):
    (models_dir / "loras" / "sub" / "lcm-lora-sdv1-5.safetensors").write_bytes(b"")
    (models_dir / "loras" / "old.pt").write_bytes(b"")
    spec = LCMLoraLoader.INPUT_TYPES()
    assert list(spec["required"]) == ["model", "lora_name", "strength_model"]
    assert list(spec["optional"]) == ["clip", "strength_clip", "lora_kind"]
    assert spec["required"]["lora_name"][0] == ["sub/lcm-lora-sdv1-5.safetensors"]
    strength = spec["required"]["strength_model"][1]
    assert (strength["min"], strength["max"], strength["step"]) == (-10.0, 10.0, 0.01)
    assert spec["optional"]["lora_kind"][0] == ["auto", "lcm", "tcd", "hyper-sd", "pcm", "dmd2", "style"]
    assert LCMLoraLoader.RETURN_TYPES == ("LCM_MODEL", "LCM_CLIP")


def test_node_applies_the_lora_and_leaves_inputs_alone(models_dir):
    tiny = tiny_models("sd15")
    save(write(factors(tiny, alpha=2.0), "kohya", "sd15", tiny.unet),
         models_dir / "loras" / "sub" / "lcm-lora-sdv1-5.safetensors")
    model, clip = model_handles(tiny)
    new_model, new_clip = LCMLoraLoader().apply_lora(model, "sub/lcm-lora-sdv1-5.safetensors", 0.8,
                                                     clip=clip, strength_clip=0.5)
    assert new_model.method == "lcm-lora" and model.method == "none"
    assert new_model.patches and new_clip.patches and not model.patches and not clip.patches
    assert {p.strength for p in new_model.patches} == {0.8} and {p.strength for p in new_clip.patches} == {0.5}
    assert new_model.unet is model.unet
    only_model, none_clip = LCMLoraLoader().apply_lora(model, "sub/lcm-lora-sdv1-5.safetensors", 1.0,
                                                       lora_kind="style")
    assert none_clip is None and only_model.method == "none"
    with pytest.raises(PathEscapeError):
        LCMLoraLoader().apply_lora(model, "../escape.safetensors", 1.0)
    assert torch.is_tensor(model.unet.conv_in.weight)
