"""Full-size-architecture SD1.5 and SDXL single files (exact real key layout, random fp16
weights) load like diffusers' own single-file loaders load them, given the repo's configs.

Memory: the machine has 24 GB, so the two sides never sit in memory together. Our
components are loaded, fingerprinted (exact bytes of every tensor) and their outputs
recorded, then freed; the reference is built from a zero-copy memory map of the file.
"""

from __future__ import annotations

import gc

import pytest
import torch

from lcm_core.models import cache, configs
from lcm_core.models.load import load_checkpoint
from lcm_core.text.tokenizer import clip_tokenizer
from support.checkpoints import mmap_state_dict, tensor_digests

pytestmark = pytest.mark.slow


def unet_inputs(family):
    gen = torch.Generator().manual_seed(0)
    context = 2048 if family == "sdxl" else 768
    kwargs = {"sample": torch.randn(1, 4, 16, 16, generator=gen), "timestep": torch.tensor([499]),
              "encoder_hidden_states": torch.randn(1, 77, context, generator=gen)}
    if family == "sdxl":
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(1, 1280, generator=gen),
                                       "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])}
    return kwargs


@torch.no_grad()
def outputs(unet, vae, encoders, family):
    """What each component computes on fixed inputs (UNet skipped when None)."""
    gen = torch.Generator().manual_seed(1)
    ids = clip_tokenizer()("a photo of a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    out = {"unet": unet(**unet_inputs(family)).sample} if unet is not None else {}
    out["vae_decode"] = vae.decode(torch.randn(1, 4, 8, 8, generator=gen)).sample
    out["vae_encode"] = vae.encode(torch.rand(1, 3, 64, 64, generator=gen) * 2 - 1).latent_dist.mean
    for i, encoder in enumerate(encoders):
        result = encoder(ids, output_hidden_states=True)
        out[f"te{i}_hidden"] = result.last_hidden_state
        out[f"te{i}_penultimate"] = result.hidden_states[-2]
    return out


def load_ours(path, dtype):
    cache.MODELS.clear()
    model, clip, vae = load_checkpoint(path, dtype=dtype, device="cpu")
    cache.MODELS.clear()
    return model, clip, vae


def reference_components(path, family, dtype, skip_unet=False):
    """diffusers' own loaders on the same tensors, one component at a time (a generator)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    state = mmap_state_dict(path)
    config = str(configs.config_dir(family))
    if not skip_unet:
        yield "unet", UNet2DConditionModel.from_single_file(state, config=config, subfolder="unet",
                                                            local_files_only=True, torch_dtype=dtype)
    yield "vae", AutoencoderKL.from_single_file(state, config=config, subfolder="vae", local_files_only=True,
                                                torch_dtype=dtype)
    classes = [CLIPTextModel, CLIPTextModelWithProjection] if family == "sdxl" else [CLIPTextModel]
    for i, cls in enumerate(classes):
        yield f"te{i}", create_diffusers_clip_model_from_ldm(
            cls, state, config=config, subfolder="text_encoder_2" if i else "text_encoder",
            local_files_only=True, torch_dtype=dtype)


def test_sd15_full_size_matches_diffusers(sd15_full_file):
    model, clip, vae = load_ours(sd15_full_file, "fp32")
    assert (model.family, model.prediction_type, model.lcm_distilled) == ("sd15", "epsilon", False)
    ours = {"unet": tensor_digests(model.unet), "vae": tensor_digests(vae.vae),
            "te0": tensor_digests(clip.text_encoders[0])}
    expected = outputs(model.unet, vae.vae, clip.text_encoders, "sd15")
    assert all(torch.isfinite(v).all() for v in expected.values())
    del model, clip, vae
    gc.collect()
    refs = {}
    for name, module in reference_components(sd15_full_file, "sd15", torch.float32):
        assert tensor_digests(module) == ours[name], name
        refs[name] = module
    got = outputs(refs["unet"], refs["vae"], [refs["te0"]], "sd15")
    for key, value in expected.items():
        assert (value - got[key]).abs().max().item() <= 1e-5, key


def test_sdxl_full_size_matches_diffusers(sdxl_full_file):
    model, clip, vae = load_ours(sdxl_full_file, "fp16")
    assert (model.family, model.prediction_type) == ("sdxl", "epsilon")
    assert [t.pad_token_id for t in clip.tokenizers] == [49407, 0] and vae.scaling_factor == 0.13025
    ours = {"unet": tensor_digests(model.unet), "vae": tensor_digests(vae.vae),
            "te0": tensor_digests(clip.text_encoders[0]), "te1": tensor_digests(clip.text_encoders[1])}
    del model, clip, vae
    gc.collect()
    for name, module in reference_components(sdxl_full_file, "sdxl", torch.float16):
        assert tensor_digests(module) == ours[name], name
        del module
        gc.collect()


def test_sdxl_full_size_text_encoders_and_vae_outputs(sdxl_full_file):
    """fp32 outputs where memory allows: text encoders and VAE (an fp32 SDXL UNet is 10 GB)."""
    from lcm_core.models.detect import detect_family
    from lcm_core.models.reader import StateReader
    from lcm_core.models.single_file import load_text_encoders, load_vae

    with StateReader(sdxl_full_file) as reader:
        det = detect_family(reader.shapes(), reader.metadata, reader.get)
        encoders = load_text_encoders(reader, det, torch.float32)
        expected = outputs(None, load_vae(reader, det, torch.float32), encoders, "sdxl")
    del encoders
    gc.collect()
    refs = dict(reference_components(sdxl_full_file, "sdxl", torch.float32, skip_unet=True))
    got = outputs(None, refs["vae"], [refs["te0"], refs["te1"]], "sdxl")
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.isfinite(value).all() and (value - got[key]).abs().max().item() <= 1e-5, key
