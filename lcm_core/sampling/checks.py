"""Input checks that turn a shape or family mismatch into a clear error, and the run-log
warnings for settings far outside what the model's few-step method supports."""

from __future__ import annotations

import logging

from ..errors import FamilyMismatchError, InputError
from ..models.handles import FAMILY_NAMES
from .options import GUIDANCE_ADVICE, SamplingOptions

log = logging.getLogger("lcm_core.sampling")

# Families whose text encoders give interchangeable conditioning.
_TEXT_GROUP = {"sd15": "sd15", "sd2": "sd2", "sd2-v": "sd2", "sdxl": "sdxl"}
_KNOWN_CHANNELS = {16: "an SD3/Flux latent", 128: "an LTX-Video latent", 12: "a Mochi latent"}


def latent_samples(latent, unet):
    """The `samples` tensor of a LATENT, checked against the UNet's input channels."""
    import torch

    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise InputError("latent_image must be a LATENT: a dict with a 'samples' tensor", input_name="latent_image",
                         details="Connect an Empty Latent Image, LCM VAE Encode or another sampler's output.")
    samples = latent["samples"]
    channels = unet.config.in_channels
    if samples.ndim != 4 or samples.shape[1] != channels:
        what = _KNOWN_CHANNELS.get(samples.shape[1] if samples.ndim == 4 else -1, "a latent of another model")
        raise FamilyMismatchError(
            f"latent_image has shape {list(samples.shape)}, but this model takes [batch, {channels}, h, w]",
            input_name="latent_image",
            details=f"It looks like {what}. Make the latent with this model's VAE or an Empty Latent Image.")
    if samples.shape[0] < 1:
        raise InputError("latent_image holds no image (batch 0)", input_name="latent_image")
    return samples


def conditioning(cond, model, unet, input_name: str) -> None:
    """Refuse a conditioning made for another family or text-encoder width."""
    if cond is None:
        return
    if not hasattr(cond, "embeds") or not hasattr(cond, "family"):
        raise InputError(f"{input_name} must be an LCM_CONDITIONING from LCM Text Encode", input_name=input_name)
    if _TEXT_GROUP.get(cond.family, cond.family) != _TEXT_GROUP.get(model.family, model.family):
        raise FamilyMismatchError(
            f"{input_name} was encoded for {FAMILY_NAMES.get(cond.family, cond.family)}, "
            f"but the model is {FAMILY_NAMES.get(model.family, model.family)}",
            input_name=input_name, details="Encode the prompt with the CLIP that was loaded with this model.")
    width = unet.config.cross_attention_dim
    if cond.embeds.ndim != 3 or cond.embeds.shape[0] != 1 or cond.embeds.shape[-1] != width:
        raise FamilyMismatchError(
            f"{input_name} embeddings have shape {list(cond.embeds.shape)}, the UNet expects [1, tokens, {width}]",
            input_name=input_name, details="Encode the prompt with the CLIP that was loaded with this model.")
    if unet.config.addition_embed_type == "text_time" and cond.pooled is None:
        raise FamilyMismatchError(f"{input_name} has no pooled embedding, which SDXL needs", input_name=input_name,
                                  details="Encode the prompt with the SDXL CLIP (both text encoders).")


def warn_about_settings(model, unet, options: SamplingOptions, negative) -> None:
    """Log what will give poor images: a model made for neither LCM nor a few-step LoRA,
    guidance far outside the method's range, a negative a distilled LCM cannot use."""
    method = model.method
    distilled = unet.config.time_cond_proj_dim is not None
    if method == "none" and not distilled:
        log.warning("%s sampling on a model that is neither LCM-distilled nor has an LCM/TCD-type LoRA applied: "
                    "expect blurry, unfinished images. Apply an LCM-LoRA or load an LCM checkpoint.",
                    options.sampler.upper())
    advice = GUIDANCE_ADVICE.get("lcm" if distilled else method)
    if advice is not None and options.guidance_scale > advice.burns_above:
        low, high = advice.usual
        log.warning("guidance_scale %.3g is far above what %s supports (%.3g-%.3g, recommended %.3g): "
                    "the image will burn", options.guidance_scale, "an LCM-distilled model" if distilled else method,
                    low, high, advice.recommended)
    if distilled and negative is not None:
        log.warning("the negative conditioning is ignored: an LCM-distilled model embeds guidance instead of CFG")
