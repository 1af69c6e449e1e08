"""`sample`: LCM / TCD multistep sampling on ComfyUI LATENTs, numerically diffusers'."""

from __future__ import annotations

import logging

from .. import progress
from ..errors import InputError
from . import checks
from .guidance import build_guidance
from .options import SamplingOptions
from .schedule import make_scheduler, set_schedule

log = logging.getLogger("lcm_core.sampling")

_SEED_SPAN = 1 << 64


def image_seeds(seed: int, batch_index: list[int]) -> list[int]:
    """The seed of each image: `seed + batch_index[k]`, wrapped into 0..2**64-1."""
    return [(seed + int(k)) % _SEED_SPAN for k in batch_index]


def generators(seeds: list[int]) -> list:
    """One CPU generator per image, so a seed gives the same noise on every device."""
    import torch

    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def sample(model, positive, latent: dict, options: SamplingOptions, negative=None) -> dict:
    """Denoise `latent` (a ComfyUI LATENT, raw VAE scale) and return a new LATENT.

    `denoise` 1.0 is txt2img: only the latent's shape is used (ComfyUI's Empty Latent Image
    flow). Below 1.0 the latent is noised to the schedule's first timestep (img2img).
    Progress goes to `lcm_core.progress` after every step, in the model's latent space
    (`x` the next sample, `denoised` the current estimate); an interrupt raises
    `Interrupted` at the next step boundary and nothing is returned.
    """
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    options = options.validated()
    with model.materialized() as unet:
        raw = checks.latent_samples(latent, unet)
        checks.conditioning(positive, model, unet, "positive")
        checks.conditioning(negative, model, unet, "negative")
        checks.warn_about_settings(model, unet, options, negative)
        if "noise_mask" in latent:
            log.warning("latent_image carries a noise_mask; LCM Sampler denoises the whole image")
        batch, _, h, w = raw.shape
        scheduler = make_scheduler(model, options)
        timesteps = set_schedule(scheduler, options)
        gens = generators(image_seeds(options.seed, _batch_index(latent, batch)))
        weight = next(unet.parameters())  # ModelMixin.device/.dtype walk every parameter: look once
        device = weight.device
        vae_scale, vae_shift = _vae_scaling(model)
        with torch.no_grad():
            guidance = build_guidance(unet, positive, negative, options.guidance_scale, batch, h * 8, w * 8,
                                      device, weight.dtype)
            noise = randn_tensor(tuple(raw.shape), generator=gens, device=device, dtype=torch.float32)
            if options.denoise >= 1.0:
                x = noise * scheduler.init_noise_sigma
            else:
                start = (raw.to(device=device, dtype=torch.float32) - vae_shift) * vae_scale
                x = scheduler.add_noise(start, noise, timesteps[:1])
            step_kwargs = {"eta": options.tcd_gamma} if options.sampler == "tcd" else {}
            scheduler.set_begin_index(0)
            total = len(timesteps)
            for i, t in enumerate(timesteps):
                progress.check_interrupt()
                model_out = guidance.predict(unet, scheduler.scale_model_input(x, t), t)
                x, denoised = scheduler.step(model_out, t, x, generator=gens, return_dict=False, **step_kwargs)
                progress.report(i + 1, total, x=x, denoised=denoised, t=int(t))
            progress.check_interrupt()
    out = {k: v for k, v in latent.items() if k != "samples"}
    out["samples"] = (denoised / vae_scale + vae_shift).float().cpu()
    return out


def _batch_index(latent: dict, batch: int) -> list[int]:
    """Each image's index in its original batch (ComfyUI's `batch_index`), else 0..B-1."""
    index = latent.get("batch_index")
    if index is None:
        return list(range(batch))
    if len(index) != batch:
        raise InputError(f"latent_image has {batch} images but a batch_index of {len(index)}",
                         input_name="latent_image", details="Rebuild the latent batch with ComfyUI's latent nodes.")
    return list(index)


def _vae_scaling(model) -> tuple[float, float]:
    """The latent scaling of the model's family (SD: 0.18215, SDXL: 0.13025), unless the
    model handle says otherwise in `extra`."""
    extra = getattr(model, "extra", None) or {}
    default = 0.13025 if model.family == "sdxl" else 0.18215
    return float(extra.get("scaling_factor", default)), float(extra.get("shift_factor", 0.0))
