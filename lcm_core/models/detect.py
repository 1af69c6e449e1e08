"""Which model family a checkpoint belongs to, from its tensor names and shapes.

Follows ComfyUI (`comfy/model_detection.py`, `comfy/supported_models.py`) and diffusers
(`infer_diffusers_model_type`) but reads the UNet's structure rather than its widths, so
small test models detect like real ones: a size embedding (`label_emb`) means SDXL, linear
`proj_in` layers SD2.x, conv ones SD1.x. Real widths (768 / 1024 / 2048 cross-attention)
must agree, and so must the text encoder keys (`cond_stage_model.transformer.*` CLIP
ViT-L, `cond_stage_model.model.*` OpenCLIP-H, `conditioner.embedders.*` for SDXL).
SD2.x v-prediction is read from a `v_pred` key, then safetensors metadata
(`modelspec.predict_key`), then ComfyUI's heuristic: the std of the last output block's
`norm1.bias` is above 0.09 for v models. An LCM-distilled UNet carries a guidance
embedding input, `time_embedding.cond_proj.weight` ([1280, 256] for LCM_Dreamshaper_v7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from ..errors import ModelFormatError

LDM_UNET = "model.diffusion_model."
LDM_VAE = "first_stage_model."
SD1_CLIP = "cond_stage_model.transformer."
SD2_CLIP = "cond_stage_model.model."
SDXL_CLIP_L = "conditioner.embedders.0.transformer."
SDXL_CLIP_G = "conditioner.embedders.1.model."
COND_PROJ = "time_embedding.cond_proj.weight"
V_HEURISTIC_KEY = {"ldm": "output_blocks.11.1.transformer_blocks.0.norm1.bias",
                   "diffusers": "up_blocks.3.attentions.2.transformer_blocks.0.norm1.bias"}
V_HEURISTIC_STD = 0.09
CONTEXT_FAMILY = {768: "sd15", 1024: "sd2", 2048: "sdxl"}
EXPECTED = ("an SD1.x, SD2.x or SDXL checkpoint: `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE) and "
            "`cond_stage_model.*` / `conditioner.embedders.*` (text encoders), or a diffusers UNet "
            "(`conv_in.weight`, `down_blocks.*`, `time_embedding.*`)")


@dataclass(frozen=True)
class Detection:
    """What a checkpoint holds: family, prediction type, layout and components present."""

    family: str
    prediction_type: str
    layout: str
    unet_prefix: str = LDM_UNET
    time_cond_proj_dim: int | None = None
    has_vae: bool = False
    has_clip: bool = False

    @property
    def lcm_distilled(self) -> bool:
        """True when the UNet takes a guidance embedding (an LCM-distilled UNet)."""
        return self.time_cond_proj_dim is not None


def _unet_layout(shapes: Mapping[str, tuple]) -> tuple[str, str] | None:
    if any(k.startswith(LDM_UNET) for k in shapes):
        return "ldm", LDM_UNET
    if "input_blocks.0.0.weight" in shapes and "time_embed.0.weight" in shapes:
        return "ldm", ""
    if "conv_in.weight" in shapes and "time_embedding.linear_1.weight" in shapes:
        return "diffusers", ""
    return None


def _context_dim(shapes: Mapping[str, tuple], prefix: str) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(prefix) and key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return int(shape[1])
    return None


def _unet_family(shapes: Mapping[str, tuple], layout: str, prefix: str) -> str:
    """Family from the UNet's structure: a size embedding (`label_emb`) means SDXL, linear
    `proj_in` layers mean SD2.x (`use_linear_projection`), conv `proj_in` SD1.x."""
    adm = prefix + ("label_emb.0.0.weight" if layout == "ldm" else "add_embedding.linear_1.weight")
    if adm in shapes:
        return "sdxl"
    proj_in = next((shape for key, shape in shapes.items() if key.startswith(prefix)
                    and key.endswith(".proj_in.weight")), None)
    return "sd2" if proj_in is not None and len(proj_in) == 2 else "sd15"


def _name(source: str) -> str:
    return f"{source}: " if source else ""


def prediction_from_markers(shapes: Mapping[str, tuple], metadata: Mapping[str, str]) -> str | None:
    """`v_prediction`/`epsilon` when the file says so (a `v_pred` key or modelspec metadata)."""
    if "v_pred" in shapes:
        return "v_prediction"
    declared = str(metadata.get("modelspec.predict_key", "")).lower()
    if declared in ("v", "v_prediction", "v-prediction"):
        return "v_prediction"
    if declared in ("epsilon", "eps"):
        return "epsilon"
    return None


def detect_family(shapes: Mapping[str, tuple], metadata: Mapping[str, str] | None = None,
                  read: Callable[[str], object] | None = None, *, source: str = "",
                  input_name: str | None = None) -> Detection:
    """Detect the family of a checkpoint from `shapes` (name -> shape).

    `read(name)` returns one tensor; it is called at most once, for SD2.x's v-prediction
    heuristic. Raises `ModelFormatError` naming what was expected when nothing matches.
    """
    metadata = metadata or {}
    found = _unet_layout(shapes)
    if found is None:
        first = ", ".join(sorted(shapes)[:5]) or "no tensors"
        raise ModelFormatError(f"{_name(source)}tensor names match no supported model family",
                               input_name=input_name, details=f"Expected {EXPECTED}. Found: {first} ...")
    layout, prefix = found
    family = _unet_family(shapes, layout, prefix)
    context = _context_dim(shapes, prefix)
    expected_context = {"sd15": 768, "sd2": 1024, "sdxl": 2048}[family]
    if context == 1280 and family == "sdxl":
        raise ModelFormatError(f"{_name(source)}this is an SDXL refiner UNet; only SD1.x, SD2.x and SDXL base "
                               "are supported", input_name=input_name, details=f"Expected {EXPECTED}.")
    if context in CONTEXT_FAMILY and context != expected_context:
        raise ModelFormatError(f"{_name(source)}UNet structure says {family} but its cross-attention width is "
                               f"{context} ({CONTEXT_FAMILY[context]})", input_name=input_name,
                               details="The file mixes model families or is an unsupported variant.")
    conv_in = shapes.get(prefix + ("input_blocks.0.0.weight" if layout == "ldm" else "conv_in.weight"))
    if conv_in is not None and conv_in[1] != 4:
        raise ModelFormatError(f"{_name(source)}UNet takes {conv_in[1]} input channels (an inpainting or "
                               "other special-purpose model)", input_name=input_name,
                               details="Only text-to-image UNets with 4 latent channels are supported.")
    clip_prefixes = {"sd15": (SD1_CLIP,), "sd2": (SD2_CLIP,), "sdxl": (SDXL_CLIP_L, SDXL_CLIP_G)}[family]
    has_clip = all(any(k.startswith(p) for k in shapes) for p in clip_prefixes)
    other_clip = [p for f, ps in (("sd15", (SD1_CLIP,)), ("sd2", (SD2_CLIP,)), ("sdxl", (SDXL_CLIP_G,)))
                  if f != family for p in ps if any(k.startswith(p) for k in shapes)]
    if other_clip:
        raise ModelFormatError(f"{_name(source)}UNet looks like {family} but the text encoder keys "
                               f"({other_clip[0]}*) belong to another family", input_name=input_name,
                               details="The file mixes model families; it cannot be loaded as one checkpoint.")
    cond_proj = shapes.get(prefix + COND_PROJ)
    prediction = prediction_from_markers(shapes, metadata)
    if prediction is None:
        prediction = "epsilon"
        key = prefix + V_HEURISTIC_KEY[layout]
        if family == "sd2" and read is not None and key in shapes:
            bias = read(key).float()
            if float(bias.std(unbiased=False)) > V_HEURISTIC_STD:
                prediction = "v_prediction"
    if family == "sd2" and prediction == "v_prediction":
        family = "sd2-v"
    return Detection(family=family, prediction_type=prediction, layout=layout, unet_prefix=prefix,
                     time_cond_proj_dim=int(cond_proj[1]) if cond_proj is not None else None,
                     has_vae=any(k.startswith(LDM_VAE) for k in shapes), has_clip=has_clip)


def family_from_unet_config(config: Mapping, prediction_type: str = "epsilon", *, source: str = "",
                            input_name: str | None = None) -> str:
    """The family of a diffusers UNet config: SDXL has `addition_embed_type` text_time,
    SD2.x `use_linear_projection`, SD1.x neither."""
    if config.get("addition_embed_type") == "text_time":
        family = "sdxl"
    elif config.get("addition_embed_type") or config.get("class_embed_type") or config.get("in_channels", 4) != 4:
        raise ModelFormatError(f"{_name(source)}UNet config matches no supported family", input_name=input_name,
                               details="Supported: SD1.x, SD2.x and SDXL base text-to-image UNets.")
    else:
        family = "sd2" if config.get("use_linear_projection") else "sd15"
    if family == "sd2" and prediction_type == "v_prediction":
        return "sd2-v"
    return family
