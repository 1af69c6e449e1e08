"""Tiny SD1.5-like and SDXL-like models, pipelines and LoRA files in every layout.

Models keep the real block structure (4 / 3 levels, 2 layers per block, cross-attention,
SDXL's text_time conditioning and two text encoders) at tiny widths. A LoRA is built as
`{(component, module): factors}` on the model's own module names, then written in a
chosen layout, so every test knows the exact delta each file must produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

SD15_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=8,
                 block_out_channels=(16, 16, 32, 32), cross_attention_dim=32, attention_head_dim=4,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SDXL_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, norm_num_groups=8,
                 block_out_channels=(16, 32, 32), cross_attention_dim=64, attention_head_dim=4,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 2), use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=6 * 8 + 32)
# The modules the published LCM-LoRA (diffusers' train_lcm_distill_lora_sd_wds.py) trains.
LCM_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                    "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")


def _clip_config(hidden: int = 32, projection: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(hidden_size=hidden, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                          vocab_size=1000, max_position_embeddings=77, projection_dim=projection,
                          bos_token_id=0, eos_token_id=2, pad_token_id=1)


def tiny_tokenizer(tmp: Path):
    """A byte-level CLIP tokenizer over a few characters (files written under `tmp`)."""
    from transformers import CLIPTokenizer

    chars = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (tmp / "vocab.json").write_text(json.dumps(vocab))
    (tmp / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(tmp / "vocab.json"), str(tmp / "merges.txt"), pad_token="!")


@dataclass
class Tiny:
    family: str
    unet: torch.nn.Module
    encoders: tuple
    tokenizers: tuple = ()


def tiny_models(family: str, seed: int = 0) -> Tiny:
    """A tiny random UNet plus text encoder(s) with the family's structure (fp32, eval)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.set_num_threads(1)  # tiny ops: thread hand-offs cost more than they win on a shared 2-core box
    torch.manual_seed(seed)
    if family == "sdxl":
        unet = UNet2DConditionModel(**SDXL_UNET)
        encoders = (CLIPTextModel(_clip_config()), CLIPTextModelWithProjection(_clip_config()))
    else:
        unet = UNet2DConditionModel(**SD15_UNET)
        encoders = (CLIPTextModel(_clip_config()),)
    for m in (unet, *encoders):
        m.eval().requires_grad_(False)
    return Tiny(family, unet, encoders)


def tiny_pipeline(tiny: Tiny, tmp: Path):
    """A diffusers SD / SDXL pipeline holding deep copies of the tiny modules."""
    import copy

    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline,
                           StableDiffusionXLPipeline)

    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",))
    tok = tiny_tokenizer(tmp)
    unet = copy.deepcopy(tiny.unet)
    encs = tuple(copy.deepcopy(e) for e in tiny.encoders)
    if tiny.family == "sdxl":
        return StableDiffusionXLPipeline(vae=vae, text_encoder=encs[0], text_encoder_2=encs[1], tokenizer=tok,
                                         tokenizer_2=tok, unet=unet, scheduler=EulerDiscreteScheduler(steps_offset=1))
    return StableDiffusionPipeline(vae=vae, text_encoder=encs[0], tokenizer=tok, unet=unet,
                                   scheduler=EulerDiscreteScheduler(steps_offset=1), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def model_handles(tiny: Tiny):
    """`(LCMModel, LCMClip)` handles over the tiny modules."""
    from lcm_core.models.handles import LCMClip, LCMModel

    model = LCMModel(unet=tiny.unet, family=tiny.family, prediction_type="epsilon", scheduler_config={})
    clip = LCMClip(tokenizers=tiny.tokenizers, text_encoders=tiny.encoders, family=tiny.family)
    return model, clip


def linear_targets(module: torch.nn.Module, suffixes: tuple[str, ...]) -> list[str]:
    return [n for n, m in module.named_modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and n.endswith(suffixes)]


ATTN = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
TE = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
CONV = ("resnets.0.conv1", "resnets.1.conv2", "downsamplers.0.conv", "time_emb_proj")


def factors(tiny: Tiny, kind: str = "lora", rank: int = 4, alpha: float | None = 2.0, seed: int = 1,
            unet_suffixes: tuple = ATTN, te: bool = True) -> dict:
    """`{(component, module): dict of factor tensors}`; component is `unet`, `te1`, `te2`."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    parts = [("unet", tiny.unet, unet_suffixes)]
    if te:
        parts += [(f"te{i + 1}", e, TE) for i, e in enumerate(tiny.encoders)]
    for comp, root, suffixes in parts:
        for name in linear_targets(root, suffixes):
            w = root.get_submodule(name).weight
            out[(comp, name)] = _make(kind, tuple(w.shape), rank, alpha, g)
    return out


def _rand(g, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * 0.1


def _make(kind: str, shape: tuple, rank: int, alpha, g) -> dict:
    o, i, *k = shape
    kk = 1 if not k else k[0] * k[1]
    if kind == "lora":
        down = _rand(g, rank, i, *k) if k else _rand(g, rank, i)
        up = _rand(g, o, rank, 1, 1) if k else _rand(g, o, rank)
        d = {"down": down, "up": up}
    elif kind == "loha":
        d = {"hada_w1_a": _rand(g, o, rank), "hada_w1_b": _rand(g, rank, i * kk),
             "hada_w2_a": _rand(g, o, rank), "hada_w2_b": _rand(g, rank, i * kk)}
    elif kind == "lokr":
        a, b = (2 if o % 2 == 0 else 1), (2 if i % 2 == 0 else 1)
        d = {"lokr_w1": _rand(g, a, b), "lokr_w2_a": _rand(g, o // a, rank), "lokr_w2_b": _rand(g, rank, (i // b) * kk)}
    else:
        raise ValueError(kind)
    if alpha is not None:
        d["alpha"] = torch.tensor(float(alpha))
    return d


def expected_delta(f: dict, shape: tuple) -> torch.Tensor:
    """The merge formula, written out independently of lcm_core."""
    alpha = f.get("alpha")
    if "down" in f:
        r = f["down"].shape[0]
        scale = 1.0 if alpha is None else float(alpha) / r
        return scale * (f["up"].flatten(1) @ f["down"].flatten(1)).reshape(shape)
    if "hada_w1_a" in f:
        r = f["hada_w1_b"].shape[0]
        scale = 1.0 if alpha is None else float(alpha) / r
        return scale * ((f["hada_w1_a"] @ f["hada_w1_b"]) * (f["hada_w2_a"] @ f["hada_w2_b"])).reshape(shape)
    r = f["lokr_w2_b"].shape[0]
    scale = 1.0 if alpha is None else float(alpha) / r
    w2 = f["lokr_w2_a"] @ f["lokr_w2_b"]
    return scale * torch.kron(f["lokr_w1"], w2).reshape(shape)


def _te_name(module: str) -> str:
    return module if module.startswith("text_model.") or module == "text_projection" else f"text_model.{module}"


def write(fs: dict, layout: str, family: str, unet=None) -> dict[str, torch.Tensor]:
    """The state dict of `fs` in `layout`: peft, diffusers-old, kohya, kohya-ldm, comfyui."""
    from lcm_core.lora.keymap import ldm_to_diffusers

    ldm = {}
    if layout in ("kohya-ldm", "comfyui"):
        ldm = {d: l for l, d in ldm_to_diffusers(dict(unet.config)).items()}
    sd: dict[str, torch.Tensor] = {}
    for (comp, module), f in fs.items():
        te_full = _te_name(module)
        if layout == "peft":
            prefix = {"unet": "unet", "te1": "text_encoder", "te2": "text_encoder_2"}[comp]
            names = {"down": ".lora_A.weight", "up": ".lora_B.weight"}
            base = f"{prefix}.{module if comp == 'unet' else te_full}"
        elif layout == "diffusers-old":
            prefix = {"unet": "unet", "te1": "text_encoder", "te2": "text_encoder_2"}[comp]
            names = {"down": ".lora.down.weight", "up": ".lora.up.weight"} if comp == "unet" else \
                {"down": ".lora_linear_layer.down.weight", "up": ".lora_linear_layer.up.weight"}
            base = f"{prefix}.{module if comp == 'unet' else te_full}"
        elif layout in ("kohya", "kohya-ldm"):
            te_pre = {"te1": "lora_te1_" if family == "sdxl" else "lora_te_", "te2": "lora_te2_"}
            names = {"down": ".lora_down.weight", "up": ".lora_up.weight"}
            if comp == "unet":
                base = "lora_unet_" + (ldm[module] if layout == "kohya-ldm" else module).replace(".", "_")
            else:
                base = te_pre[comp] + te_full.replace(".", "_")
        elif layout == "comfyui":
            names = {"down": ".lora_down.weight", "up": ".lora_up.weight"}
            clip = {"te1": "clip_l", "te2": "clip_g"}.get(comp)
            base = f"diffusion_model.{ldm[module]}" if comp == "unet" else \
                f"text_encoders.{clip}.transformer.{te_full}"
        else:
            raise ValueError(layout)
        for part, value in f.items():
            suffix = names.get(part, "." + part)
            if part == "alpha" and layout in ("peft", "diffusers-old"):
                continue
            sd[base + suffix] = value
    return sd


def save(sd: dict, path: Path, metadata: dict | None = None) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    return path
