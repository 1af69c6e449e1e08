"""Single-file checkpoints (original SD key layout, or a diffusers-layout UNet file).

Each component is read from the file on its own, converted with diffusers' own
`single_file_utils` functions against the repo's configs, and assigned into an empty
module before the next component is read, so peak memory stays near one model copy.
"""

from __future__ import annotations

from typing import Any

from . import configs
from .assemble import Parts, assign, build_text_encoder, build_unet, build_vae
from .detect import COND_PROJ, LDM_UNET, LDM_VAE, SD1_CLIP, SD2_CLIP, SDXL_CLIP_G, SDXL_CLIP_L, Detection
from .reader import StateReader

FAMILY_CLIP = {"sd15": ((SD1_CLIP, "text_encoder"),), "sd2": ((SD2_CLIP, "text_encoder"),),
               "sd2-v": ((SD2_CLIP, "text_encoder"),),
               "sdxl": ((SDXL_CLIP_L, "text_encoder"), (SDXL_CLIP_G, "text_encoder_2"))}


def unet_config(det: Detection) -> dict:
    """The family's UNet config, with the guidance-embedding input of an LCM-distilled UNet."""
    config = configs.component_config(det.family, "unet", lcm=det.lcm_distilled)
    if det.lcm_distilled:
        config["time_cond_proj_dim"] = det.time_cond_proj_dim
    return config


def load_unet(reader: StateReader, det: Detection, dtype: Any, *, device: Any = None,
              input_name: str | None = None):
    """The UNet of a single-file checkpoint as a `UNet2DConditionModel`."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    config = unet_config(det)
    prefix = det.unet_prefix
    if det.layout == "diffusers":
        state = {k: reader.get(k, dtype) for k in reader.keys() if not k.startswith((LDM_VAE, "cond_stage_model.",
                                                                                     "conditioner."))}
    else:
        raw = {LDM_UNET + k[len(prefix):]: reader.get(k, dtype) for k in reader.keys() if k.startswith(prefix)
               and (prefix or not k.startswith((LDM_VAE, "cond_stage_model.", "conditioner.")))}
        state = convert_ldm_unet_checkpoint(raw, config)
        if det.lcm_distilled:
            state[COND_PROJ] = raw[LDM_UNET + COND_PROJ]
        del raw
    return assign(build_unet(config), state, what="UNet", source=reader.path.name, input_name=input_name,
                  device=device)


def load_vae(reader: StateReader, det: Detection, dtype: Any, *, device: Any = None,
             input_name: str | None = None):
    """The VAE (`first_stage_model.*`) as an `AutoencoderKL`."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    config = configs.component_config(det.family, "vae")
    state = convert_ldm_vae_checkpoint(reader.read(LDM_VAE, dtype), config)
    return assign(build_vae(config), state, what="VAE", source=reader.path.name, input_name=input_name,
                  device=device)


def load_text_encoders(reader: StateReader, det: Detection, dtype: Any, *, device: Any = None,
                       input_name: str | None = None) -> tuple:
    """The text encoder(s): CLIP ViT-L (`transformer.*`) and/or OpenCLIP (`model.*`)."""
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint, convert_open_clip_checkpoint

    encoders = []
    for prefix, component in FAMILY_CLIP[det.family]:
        config = configs.component_config(det.family, component)
        module = build_text_encoder(config)
        raw = reader.read(prefix, dtype)
        if prefix.endswith(".model."):
            state = convert_open_clip_checkpoint(module, raw, prefix=prefix)
        else:
            state = convert_ldm_clip_checkpoint(raw, remove_prefix=prefix)
        del raw
        encoders.append(assign(module, state, what=component.replace("_", " "), source=reader.path.name,
                               input_name=input_name, device=device))
    return tuple(encoders)


def load_single_file(reader: StateReader, det: Detection, dtype: Any, *, device: Any = None,
                     input_name: str | None = None, with_unet: bool = True) -> Parts:
    """Every component the file holds; VAE and text encoders only when present, the UNet
    only `with_unet` (a base for another UNet needs only its VAE and text encoders)."""
    from ..text.tokenizer import family_tokenizers

    parts = Parts(family=det.family, prediction_type=det.prediction_type,
                  scheduler_config=configs.scheduler_config(det.family, lcm=det.lcm_distilled),
                  lcm_distilled=det.lcm_distilled)
    parts.scheduler_config["prediction_type"] = det.prediction_type
    if with_unet:
        parts.unet = load_unet(reader, det, dtype, device=device, input_name=input_name)
    if det.has_vae:
        parts.vae = load_vae(reader, det, dtype, device=device, input_name=input_name)
    if det.has_clip:
        parts.text_encoders = load_text_encoders(reader, det, dtype, device=device, input_name=input_name)
        parts.tokenizers = family_tokenizers(det.family)
    return parts
