"""Every name a LoRA file may use for a module of our diffusers models.

`unet_names(unet)` and `clip_names(encoders, family)` return `{alias: Target}` tables
covering PEFT/diffusers names, old attention-processor names, kohya names (diffusers
module names and original-SD names), ComfyUI's `diffusion_model.`/`text_encoders.`
names and SimpleTuner's `lycoris_` names. The original-SD (ldm) names come from
diffusers' own single-file conversion, run over placeholder tensors keyed by the ldm
names the UNet config implies, so they follow diffusers exactly.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

_LINEAR_OR_CONV = (torch.nn.Linear, torch.nn.Conv2d)
_RES_LDM = ("in_layers.0", "in_layers.2", "emb_layers.1", "out_layers.0", "out_layers.3", "skip_connection")
_ATTN_INNER = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
               "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2", "norm1", "norm2", "norm3")
COMFY_CLIP_NAMES = {"sd15": ("clip_l",), "sd2": ("clip_h",), "sd2-v": ("clip_h",), "sdxl": ("clip_l", "clip_g")}
TE_PEFT_PREFIX = ("text_encoder", "text_encoder_2")
TE_KOHYA_PREFIX = (("lora_te_", "lora_te1_"), ("lora_te2_",))
TE_PREFIXES = ("text_encoder.", "text_encoder_2.", "lora_te_", "lora_te1_", "lora_te2_", "text_encoders.")


@dataclass(frozen=True)
class Target:
    """One weight a LoRA can patch: `component` (0 = UNet or first text encoder, 1 =
    second text encoder), the module's name inside it, and its weight shape."""

    component: int
    module: str
    shape: tuple


def _list(value, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def ldm_unet_keys(config: dict) -> list[str]:
    """Original-SD (ldm `openaimodel`) parameter names for a UNet with this diffusers config."""
    down, up = list(config["down_block_types"]), list(config["up_block_types"])
    layers = config["layers_per_block"]
    depth = _list(config.get("transformer_layers_per_block", 1), len(down))
    rdepth = config.get("reverse_transformer_layers_per_block") or depth[::-1]
    modules = ["time_embed.0", "time_embed.2", "input_blocks.0.0", "out.0", "out.2"]
    if config.get("addition_embed_type") == "text_time" or config.get("class_embed_type") in ("timestep", "projection"):
        modules += ["label_emb.0.0", "label_emb.0.2"]

    def res(prefix: str) -> list[str]:
        return [f"{prefix}.{name}" for name in _RES_LDM]

    def attn(prefix: str, d: int) -> list[str]:
        inner = ["norm", "proj_in", "proj_out"] + [f"transformer_blocks.{k}.{x}" for k in range(d) for x in _ATTN_INNER]
        return [f"{prefix}.{x}" for x in inner]

    n = 1
    for i, kind in enumerate(down):
        for _ in range(_list(layers, len(down))[i]):
            modules += res(f"input_blocks.{n}.0")
            if "CrossAttn" in kind:
                modules += attn(f"input_blocks.{n}.1", depth[i])
            n += 1
        if i < len(down) - 1:
            modules.append(f"input_blocks.{n}.0.op")
            n += 1
    if config.get("mid_block_type", "UNetMidBlock2DCrossAttn") == "UNetMidBlock2DCrossAttn":
        modules += res("middle_block.0") + attn("middle_block.1", depth[-1]) + res("middle_block.2")
    n = 0
    for i, kind in enumerate(up):
        for j in range(_list(layers, len(up))[i] + 1):
            modules += res(f"output_blocks.{n}.0")
            if "CrossAttn" in kind:
                modules += attn(f"output_blocks.{n}.1", rdepth[i])
            if j == _list(layers, len(up))[i] and i < len(up) - 1:
                modules.append(f"output_blocks.{n}.{2 if 'CrossAttn' in kind else 1}.conv")
            n += 1
    return [f"{m}.{p}" for m in modules for p in ("weight", "bias")]


def ldm_to_diffusers(config: dict) -> dict[str, str]:
    """`{ldm module name: diffusers module name}` for a UNet config, by diffusers' converter."""
    from diffusers.loaders.single_file_utils import LDM_UNET_KEY, convert_ldm_unet_checkpoint

    keys = ldm_unet_keys(config)
    placeholders = {LDM_UNET_KEY + k: torch.tensor(float(i)) for i, k in enumerate(keys)}
    converted = convert_ldm_unet_checkpoint(placeholders, dict(config))
    out = {}
    for diff_key, value in converted.items():
        if value is None or not diff_key.endswith(".weight"):
            continue
        ldm_key = keys[int(value.item())]
        out[ldm_key[: -len(".weight")]] = diff_key[: -len(".weight")]
    return out


def _weights(model: torch.nn.Module) -> dict[str, tuple]:
    return {name: tuple(m.weight.shape) for name, m in model.named_modules()
            if isinstance(m, _LINEAR_OR_CONV) and getattr(m, "weight", None) is not None}


_unet_cache: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def unet_names(unet: torch.nn.Module) -> dict[str, Target]:
    """Every alias of every Linear/Conv weight of a diffusers `UNet2DConditionModel`."""
    cached = _unet_cache.get(unet)
    if cached is not None:
        return cached
    weights = _weights(unet)
    table: dict[str, Target] = {}

    def add(alias: str, module: str) -> None:
        table.setdefault(alias, Target(0, module, weights[module]))

    for module in weights:
        under = module.replace(".", "_")
        for alias in (f"unet.{module}", module, f"lora_unet_{under}", f"lycoris_{under}",
                      f"base_model.model.{module}", f"unet.base_model.model.{module}"):
            add(alias, module)
        if ".attn1." in module or ".attn2." in module:  # attention-processor names
            proc = module.replace(".attn1.", ".attn1.processor.").replace(".attn2.", ".attn2.processor.")
            proc = proc[:-2] if proc.endswith(".to_out.0") else proc
            add(f"unet.{proc}", module)
            add(proc, module)
    config = getattr(unet, "config", None)
    if config is not None and "down_block_types" in config:
        for ldm, module in ldm_to_diffusers(dict(config)).items():
            if module in weights:
                add(f"lora_unet_{ldm.replace('.', '_')}", module)
                add(f"diffusion_model.{ldm}", module)
    _unet_cache[unet] = table
    return table


def _canonical(name: str) -> str:
    return name[len("text_model."):] if name.startswith("text_model.") else name


def clip_names(encoders: tuple, family: str) -> dict[str, Target]:
    """Every alias of every Linear weight of the text encoders (`text_model.` prefix
    optional, as transformers 4 and 5 differ)."""
    table: dict[str, Target] = {}
    comfy = COMFY_CLIP_NAMES.get(family, ())
    for index, encoder in enumerate(encoders):
        for module, shape in _weights(encoder).items():
            c = _canonical(module)
            full = c if c == "text_projection" else f"text_model.{c}"
            old = c.replace("self_attn.q_proj", "self_attn.to_q").replace("self_attn.k_proj", "self_attn.to_k")
            old = old.replace("self_attn.v_proj", "self_attn.to_v").replace("self_attn.out_proj", "self_attn.to_out")
            aliases = []
            if index < len(TE_PEFT_PREFIX):
                p = TE_PEFT_PREFIX[index]
                aliases += [f"{p}.{full}", f"{p}.{c}", f"{p}.text_model.{old}", f"{p}.{old}"]
                aliases += [k + full.replace(".", "_") for k in TE_KOHYA_PREFIX[index]]
            if index < len(comfy):
                name = comfy[index]
                tail = "transformer.text_projection" if c == "text_projection" else f"transformer.text_model.{c}"
                aliases.append(f"text_encoders.{name}.{tail}")
                if len(encoders) == 1:
                    aliases.append(f"text_encoders.{tail}")
            for alias in aliases:
                table.setdefault(alias, Target(index, module, shape))
    return table


def is_text_encoder_key(name: str) -> bool:
    """Whether a file's module name addresses a text encoder (by its prefix)."""
    return name.startswith(TE_PREFIXES)
