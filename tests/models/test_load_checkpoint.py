"""Tiny checkpoints of every family load through the real code path with the right flags
and exactly the weights that were written (the writer inverts diffusers' conversion, the
loader runs diffusers' conversion), and match diffusers' own `from_single_file`."""

from __future__ import annotations

import pytest
import torch

from lcm_core import paths
from lcm_core.errors import FamilyMismatchError, ModelFormatError
from lcm_core.models.load import load_checkpoint
from support.checkpoints import to_ldm

CASES = [  # family written, lcm, expected family, prediction, scheduler, tokenizer pads
    ("sd15", False, "sd15", "epsilon", "PNDMScheduler", [49407]),
    ("sd15", True, "sd15", "epsilon", "LCMScheduler", [49407]),
    ("sd2", False, "sd2", "epsilon", "PNDMScheduler", [0]),
    ("sd2-v", False, "sd2-v", "v_prediction", "DDIMScheduler", [0]),
    ("sdxl", False, "sdxl", "epsilon", "EulerDiscreteScheduler", [49407, 0]),
    ("sdxl", True, "sdxl", "epsilon", "LCMScheduler", [49407, 0]),
]


def assert_same_weights(module, reference):
    got, ref = module.state_dict(), reference.state_dict()
    got = {k.removeprefix("text_model."): v for k, v in got.items()}
    ref = {k.removeprefix("text_model."): v for k, v in ref.items()}
    assert set(got) == set(ref)
    different = [k for k in ref if not torch.equal(got[k], ref[k].to(got[k].dtype))]
    assert not different, different[:5]


def encoders_of(family, comps):
    return [comps["text_encoder"], comps["text_encoder_2"]] if family == "sdxl" else [comps["text_encoder"]]


@pytest.mark.parametrize("family,lcm,expected,prediction,scheduler,pads", CASES)
def test_single_file_families(tiny_configs, tiny_single_file, family, lcm, expected, prediction, scheduler, pads):
    path, comps = tiny_single_file(family, lcm)
    model, clip, vae = load_checkpoint(path, dtype="fp32", device="cpu")
    assert (model.family, model.prediction_type, model.lcm_distilled) == (expected, prediction, lcm)
    assert model.method == ("lcm" if lcm else "none")
    assert model.scheduler_config["_class_name"] == scheduler
    assert model.scheduler_config["prediction_type"] == prediction
    assert clip.family == vae.family == expected
    assert [t.pad_token_id for t in clip.tokenizers] == pads
    assert vae.scaling_factor == (0.13025 if family == "sdxl" else 0.18215)
    if lcm:
        assert model.unet.config.time_cond_proj_dim == 256
        assert model.scheduler_config["original_inference_steps"] == 50
    assert_same_weights(model.unet, comps["unet"])
    assert_same_weights(vae.vae, comps["vae"])
    for got, ref in zip(clip.text_encoders, encoders_of(family, comps), strict=True):
        assert type(got) is type(ref)
        assert_same_weights(got, ref)


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_matches_diffusers_from_single_file(tiny_configs, tiny_single_file, family):
    """The same file through diffusers' own single-file loaders, given the same configs."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from safetensors.torch import load_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    path, _ = tiny_single_file(family)
    model, clip, vae = load_checkpoint(path, dtype="fp32", device="cpu")
    config = str(tiny_configs / family)
    ref_unet = UNet2DConditionModel.from_single_file(str(path), config=config, subfolder="unet",
                                                     local_files_only=True)
    ref_vae = AutoencoderKL.from_single_file(str(path), config=config, subfolder="vae", local_files_only=True)
    assert_same_weights(model.unet, ref_unet)
    assert_same_weights(vae.vae, ref_vae)
    checkpoint = load_file(str(path))
    classes = [CLIPTextModel, CLIPTextModelWithProjection] if family == "sdxl" else [CLIPTextModel]
    for cls, name, got in zip(classes, ["text_encoder", "text_encoder_2"], clip.text_encoders):
        ref = create_diffusers_clip_model_from_ldm(cls, checkpoint, config=config, subfolder=name,
                                                   local_files_only=True)
        assert_same_weights(got, ref)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_diffusers_folder_lcm(tiny_configs, tiny_diffusers_folder, family):
    folder, comps = tiny_diffusers_folder(family, lcm=True)
    model, clip, vae = load_checkpoint(folder, dtype="fp32", device="cpu")
    assert model.lcm_distilled and model.method == "lcm" and model.family == family
    assert model.scheduler_config["_class_name"] == "LCMScheduler"
    assert model.unet.config.time_cond_proj_dim == 256
    assert_same_weights(model.unet, comps["unet"])
    assert_same_weights(vae.vae, comps["vae"])
    for got, ref in zip(clip.text_encoders, encoders_of(family, comps), strict=True):
        assert_same_weights(got, ref)
    assert [t.pad_token_id for t in clip.tokenizers] == ([49407, 0] if family == "sdxl" else [49407])


def test_diffusers_folder_with_transformers4_text_encoder(tiny_configs, tiny_diffusers_folder):
    folder, comps = tiny_diffusers_folder("sd15", te_prefix=True)
    model, clip, _ = load_checkpoint(folder, dtype="fp32", device="cpu")
    assert not model.lcm_distilled and model.method == "none"
    assert_same_weights(clip.text_encoders[0], comps["text_encoder"])


def test_unet_only_folder_takes_clip_and_vae_from_base(tiny_configs, tiny_single_file, tiny_diffusers_folder):
    base, base_comps = tiny_single_file("sd15")
    unet_folder, comps = tiny_diffusers_folder("sd15", lcm=True, unet_only=True, seed=2)
    with pytest.raises(ModelFormatError) as info:
        load_checkpoint(unet_folder, dtype="fp32", device="cpu")
    assert info.value.input_name == "base_ckpt_name" and "base" in info.value.details
    model, clip, vae = load_checkpoint(unet_folder, dtype="fp32", device="cpu", base=base)
    assert model.lcm_distilled and model.scheduler_config["_class_name"] == "LCMScheduler"
    assert_same_weights(model.unet, comps["unet"])
    assert_same_weights(vae.vae, base_comps["vae"])
    assert_same_weights(clip.text_encoders[0], base_comps["text_encoder"])


def test_unet_only_files_diffusers_and_ldm_layout(tmp_path, tiny_configs, tiny_single_file):
    from safetensors.torch import save_file

    base, _ = tiny_single_file("sd15")
    ldm_unet, comps = tiny_single_file("sd15", lcm=True, seed=3, parts=("unet",))
    diffusers_unet = tmp_path / "unet_diffusers.safetensors"
    save_file({k: v.contiguous() for k, v in comps["unet"].state_dict().items()}, str(diffusers_unet))
    bare = tmp_path / "unet_bare.safetensors"
    save_file({k.removeprefix("model.diffusion_model."): v for k, v in to_ldm(comps, "sd15").items()
               if k.startswith("model.diffusion_model.")}, str(bare))
    for path in (ldm_unet, diffusers_unet, bare):
        model, clip, vae = load_checkpoint(path, dtype="fp32", device="cpu", base=base)
        assert model.family == "sd15" and model.lcm_distilled, path.name
        assert_same_weights(model.unet, comps["unet"])
        assert len(clip.text_encoders) == 1 and vae.vae is not None


def test_base_of_another_family_is_refused(tiny_configs, tiny_single_file, tiny_diffusers_folder):
    base, _ = tiny_single_file("sdxl")
    unet, _ = tiny_diffusers_folder("sd15", lcm=True, unet_only=True, seed=2)
    with pytest.raises(FamilyMismatchError, match="sdxl"):
        load_checkpoint(unet, dtype="fp32", device="cpu", base=base)


def test_dtype_option(tiny_configs, tiny_single_file):
    path, _ = tiny_single_file("sd15")
    model, clip, vae = load_checkpoint(path, dtype="fp16", device="cpu")
    tensors = [model.unet, vae.vae, clip.text_encoders[0]]
    assert {p.dtype for m in tensors for p in m.parameters()} == {torch.float16}
    assert model.extra["dtype"] == "float16"
    model32, _, _ = load_checkpoint(path, dtype="auto", device="cpu")
    assert next(model32.unet.parameters()).dtype == torch.float32


def test_names_resolve_in_model_folders(tmp_path, tiny_configs, tiny_single_file, tiny_diffusers_folder):
    import shutil

    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_single_file("sd15")[0], root / "checkpoints" / "tiny.safetensors")
    shutil.copytree(tiny_diffusers_folder("sd15", lcm=True)[0], root / "diffusers" / "LCM_tiny")
    paths.configure(paths.LocalFolders(root))
    try:
        model, _, _ = load_checkpoint("tiny.safetensors", dtype="fp32", device="cpu")
        assert model.source == "tiny.safetensors" and not model.lcm_distilled
        model, _, _ = load_checkpoint("LCM_tiny", dtype="fp32", device="cpu")
        assert model.lcm_distilled
    finally:
        paths.configure(None)
