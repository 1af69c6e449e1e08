"""Full-size key coverage, unmatched keys, family mismatches and method detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lcm_core.errors import FamilyMismatchError, LoraError
from lcm_core.lora import apply_lora, match_lora, parse_lora
from lcm_core.lora.keymap import ldm_to_diffusers, unet_names
from support.lora_files import (LCM_LORA_TARGETS, factors, linear_targets, model_handles, save,
                                tiny_models, write)

# shared/ sits beside the repository (CI lays a copy there too).
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def _meta_unet(family: str):
    """The family's full-size UNet from the repo's config, on the meta device (no memory)."""
    from diffusers import UNet2DConditionModel

    from lcm_core.models.configs import component_config

    with torch.device("meta"):
        return UNet2DConditionModel.from_config(component_config(family, "unet"))


def _lcm_lora_state(unet, rank: int = 64) -> dict[str, torch.Tensor]:
    """The published LCM-LoRA's shape: PEFT keys on every targeted UNet module, rank 64."""
    sd = {}
    for name in linear_targets(unet, LCM_LORA_TARGETS):
        o, i, *k = unet.get_submodule(name).weight.shape
        sd[f"unet.{name}.lora_A.weight"] = torch.empty(rank, i, *k, device="meta")
        sd[f"unet.{name}.lora_B.weight"] = torch.empty(o, rank, *([1, 1] if k else []), device="meta")
    return sd


@pytest.fixture(scope="module")
def full_sd15():
    return _meta_unet("sd15")


@pytest.fixture(scope="module")
def full_sdxl():
    return _meta_unet("sdxl")


def test_full_size_lcm_lora_touches_every_key(full_sd15):
    sd = _lcm_lora_state(full_sd15)
    params = sum(t.numel() for t in sd.values())
    assert 60e6 < params < 75e6, params  # the published file holds 67.5M parameters
    lora = parse_lora(sd, {}, "lcm-lora-sdv1-5.safetensors")
    hits, _ = match_lora(lora, "sd15", full_sd15, None)
    assert set(hits) == {k[: -len(".lora_A.weight")] for k in sd if k.endswith(".lora_A.weight")}
    assert len({t.module for t in hits.values()}) == len(hits)


def test_full_size_kohya_original_sd_names_match_every_module(full_sd15):
    ldm = {d: l for l, d in ldm_to_diffusers(dict(full_sd15.config)).items()}
    sd = {}
    for name in linear_targets(full_sd15, LCM_LORA_TARGETS):
        o, i, *k = full_sd15.get_submodule(name).weight.shape
        base = "lora_unet_" + ldm[name].replace(".", "_")
        sd[f"{base}.lora_down.weight"] = torch.empty(8, i, *k, device="meta")
        sd[f"{base}.lora_up.weight"] = torch.empty(o, 8, *([1, 1] if k else []), device="meta")
        sd[f"{base}.alpha"] = torch.tensor(4.0)
    hits, _ = match_lora(parse_lora(sd, {}, "k.safetensors"), "sd15", full_sd15, None)
    assert len(hits) == len(sd) // 3


def test_ldm_names_cover_the_real_checkpoint_layout(full_sd15, full_sdxl):
    if not FIXTURES.is_dir():
        pytest.skip(f"no fixture facts at {FIXTURES}")
    for unet, name in ((full_sd15, "sd15"), (full_sdxl, "sdxl")):
        keys = json.loads((FIXTURES / f"{name}_single_file_keys.json").read_text())
        real = {k[len("model.diffusion_model."):-len(".weight")] for k in keys
                if k.startswith("model.diffusion_model.") and k.endswith(".weight")}
        table = unet_names(unet)
        modules = {t.module for a, t in table.items() if a.startswith("diffusion_model.")}
        weights = {n for n, m in unet.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
        assert modules == weights, f"{name}: every Linear/Conv has an original-SD name"
        ldm_names = {a[len("diffusion_model."):] for a in table if a.startswith("diffusion_model.")}
        assert ldm_names <= real


@pytest.mark.parametrize("ldm, diffusers", [
    ("input_blocks.1.1.proj_in", "down_blocks.0.attentions.0.proj_in"),
    ("input_blocks.3.0.op", "down_blocks.0.downsamplers.0.conv"),
    ("input_blocks.4.0.skip_connection", "down_blocks.1.resnets.0.conv_shortcut"),
    ("middle_block.1.transformer_blocks.0.attn2.to_k", "mid_block.attentions.0.transformer_blocks.0.attn2.to_k"),
    ("middle_block.2.emb_layers.1", "mid_block.resnets.1.time_emb_proj"),
    ("output_blocks.2.1.conv", "up_blocks.0.upsamplers.0.conv"),
    ("output_blocks.3.0.in_layers.2", "up_blocks.1.resnets.0.conv1"),
    ("output_blocks.8.2.conv", "up_blocks.2.upsamplers.0.conv"),
    ("output_blocks.11.1.transformer_blocks.0.ff.net.2", "up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2"),
    ("time_embed.2", "time_embedding.linear_2"),
])
def test_known_sd15_name_pairs(full_sd15, ldm, diffusers):
    table = unet_names(full_sd15)
    assert table[f"diffusion_model.{ldm}"].module == diffusers
    assert table["lora_unet_" + ldm.replace(".", "_")].module == diffusers


def test_lcm_lora_of_one_family_on_the_other_is_refused(full_sd15, full_sdxl):
    xl = parse_lora(_lcm_lora_state(full_sdxl, rank=4), {}, "lcm-lora-sdxl.safetensors")
    with pytest.raises(FamilyMismatchError, match="SDXL.*SD1.5"):
        match_lora(xl, "sd15", full_sd15, None)
    sd15 = parse_lora(_lcm_lora_state(full_sd15, rank=4), {}, "lcm-lora-sdv1-5.safetensors")
    with pytest.raises(FamilyMismatchError, match="SD1.5.*SDXL"):
        match_lora(sd15, "sdxl", full_sdxl, None)


@pytest.fixture(scope="module")
def tinies():
    return {f: tiny_models(f) for f in ("sd15", "sdxl")}


@pytest.mark.parametrize("made_for, applied_to", [("sdxl", "sd15"), ("sd15", "sdxl")])
@pytest.mark.parametrize("layout", ["kohya", "peft"])
def test_tiny_family_mismatch_names_both_before_any_change(tinies, made_for, applied_to, layout, tmp_path):
    src = tinies[made_for]
    path = save(write(factors(src, alpha=2.0), layout, made_for, src.unet), tmp_path / "x.safetensors")
    target = tinies[applied_to]
    before = {k: v.clone() for k, v in target.unet.state_dict().items()}
    model, clip = model_handles(target)
    names = {"sd15": "SD1.5", "sdxl": "SDXL"}
    with pytest.raises(FamilyMismatchError) as err:
        apply_lora(model, clip, path, 1.0, 1.0)
    assert names[made_for] in err.value.message and names[applied_to] in err.value.message
    assert all(torch.equal(before[k], v) for k, v in target.unet.state_dict().items())


def test_header_family_is_checked_first(tinies, tmp_path):
    t = tinies["sd15"]
    path = save(write(factors(t, alpha=2.0), "kohya", "sd15", t.unet), tmp_path / "x.safetensors",
                {"ss_base_model_version": "sdxl_base_v1-0"})
    model, clip = model_handles(t)
    with pytest.raises(FamilyMismatchError, match="SDXL"):
        apply_lora(model, clip, path, 1.0, 1.0)


def test_unmatched_keys_are_listed_with_their_count(tinies, tmp_path):
    t = tinies["sd15"]
    sd = write(factors(t, alpha=2.0), "kohya", "sd15", t.unet)
    bogus = [f"lora_unet_down_blocks_9_attentions_{i}_proj_in" for i in range(15)]
    for b in bogus:
        sd[f"{b}.lora_down.weight"] = torch.zeros(4, 16)
        sd[f"{b}.lora_up.weight"] = torch.zeros(16, 4)
    path = save(sd, tmp_path / "bad.safetensors")
    model, clip = model_handles(t)
    with pytest.raises(LoraError) as err:
        apply_lora(model, clip, path, 1.0, 1.0)
    assert "30 of" in err.value.message
    assert f"{sorted(bogus)[0]}.lora_down.weight" in err.value.details and "and 18 more" in err.value.details


def test_foreign_tensors_and_pickles_are_refused(tinies, tmp_path):
    t = tinies["sd15"]
    model, clip = model_handles(t)
    path = save({"model.diffusion_model.out.2.weight": torch.zeros(1)}, tmp_path / "ckpt.safetensors")
    with pytest.raises(LoraError, match="not LoRA tensors"):
        apply_lora(model, clip, path, 1.0, 1.0)
    pickle = tmp_path / "x.pt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(LoraError, match="only .safetensors"):
        apply_lora(model, clip, pickle, 1.0, 1.0)


@pytest.mark.parametrize("name, metadata, kind, method", [
    ("lcm-lora-sdv1-5.safetensors", {}, "auto", "lcm-lora"),
    ("pytorch_lora_weights.safetensors", {"ss_output_name": "LCM_LoRA_SD15"}, "auto", "lcm-lora"),
    ("tcd-sd15.safetensors", {}, "auto", "tcd"),
    ("Hyper-SD15-8steps-lora.safetensors", {}, "auto", "hyper-sd"),
    ("pcm_sd15_smallcfg_4step.safetensors", {}, "auto", "pcm"),
    ("dmd2_sd15_4step_lora.safetensors", {}, "auto", "dmd2"),
    ("watercolor.safetensors", {}, "auto", "none"),
    ("lcm-lora-sdv1-5.safetensors", {}, "style", "none"),
    ("my_distilled.safetensors", {}, "lcm", "lcm-lora"),
])
def test_method_is_recorded_on_the_model(tinies, tmp_path, name, metadata, kind, method):
    t = tinies["sd15"]
    path = save(write(factors(t, te=False), "peft", "sd15", t.unet), tmp_path / name, metadata)
    model, _ = model_handles(t)
    m2, _ = apply_lora(model, None, path, 1.0, 0.0, kind=kind)
    assert m2.method == method and model.method == "none"
