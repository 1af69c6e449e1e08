"""LCM Sampler: few-step LCM / TCD sampling of a LATENT."""

from __future__ import annotations

import functools

from . import host
from ._engine import engine

_SEED_MAX = 0xFFFFFFFFFFFFFFFF


class LCMSampler:
    """Sample with diffusers' LCMScheduler or TCDScheduler; txt2img at denoise 1.0,
    img2img below it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("LCM_MODEL", {"tooltip": "The LCM-distilled model, or a model with an LCM/TCD LoRA."}),
                "positive": ("LCM_CONDITIONING", {"tooltip": "The prompt, from LCM Text Encode."}),
                "latent_image": ("LATENT", {"tooltip": "Empty Latent Image for txt2img, or LCM VAE Encode's "
                                                       "output for img2img. Its batch size is the image count."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": _SEED_MAX,
                                 "tooltip": "Image k of a batch uses seed + k, so each image can be remade alone."}),
                "steps": ("INT", {"default": 4, "min": 1, "max": 50, "step": 1,
                                  "tooltip": "Model calls; LCM and TCD need 2-8, 4 is typical."}),
                "guidance_scale": ("FLOAT", {"default": 1.5, "min": 0.0, "max": 20.0, "step": 0.1, "round": 0.01,
                                             "tooltip": "LCM-LoRA/TCD: real CFG, 1.0-2.0 (1.0 = off, needs no "
                                                        "negative). LCM-distilled: embedded guidance, ~8."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01,
                                      "tooltip": "1.0 generates from noise; lower keeps more of the input latent "
                                                 "(img2img). At least one step always runs."}),
                "sampler_name": (["lcm", "tcd"], {"default": "lcm",
                                                 "tooltip": "lcm: LCMScheduler. tcd: TCDScheduler (for TCD LoRAs)."}),
            },
            "optional": {
                "negative": ("LCM_CONDITIONING", {"tooltip": "Negative prompt for CFG (guidance_scale > 1 on "
                                                             "non-distilled models). Ignored by LCM-distilled models."}),
                "original_inference_steps": ("INT", {"default": 50, "min": 1, "max": 1000, "step": 1,
                                                     "tooltip": "The schedule the model was distilled on (50 for "
                                                                "LCM). Change only if the model card says so."}),
                "tcd_gamma": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.05,
                                        "tooltip": "TCD stochasticity (eta): 0 deterministic, higher adds detail "
                                                   "variation. Only used by the tcd sampler."}),
                "timesteps": ("STRING", {"default": "", "multiline": False,
                                         "tooltip": "Explicit descending timesteps, e.g. 999,749,499,249 for DMD2 "
                                                    "or Hyper-SD; replaces steps. Empty = automatic."}),
            },
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent (raw VAE scale; decode with LCM VAE Decode or VAE Decode).",)
    FUNCTION = "sample"
    CATEGORY = "LCM/sampling"
    DESCRIPTION = ("Few-step sampling for Latent Consistency Models (LCM, LCM-LoRA, TCD and similar), "
                   "numerically the same as diffusers' pipelines.")

    def sample(self, model, positive, latent_image, seed, steps, guidance_scale, denoise, sampler_name,
               negative=None, original_inference_steps=50, tcd_gamma=0.3, timesteps=""):
        sampling = engine("sampling")
        options = sampling.SamplingOptions(
            seed=seed, steps=steps, guidance_scale=guidance_scale, denoise=denoise, sampler=sampler_name,
            original_inference_steps=original_inference_steps, tcd_gamma=tcd_gamma,
            timesteps=sampling.parse_timesteps(timesteps))
        preview = functools.partial(engine("sampling.preview").latent_to_rgb, family=model.family)
        return (host.run(sampling.sample, model, positive, latent_image, options, negative=negative, preview=preview),)


NODE_CLASS_MAPPINGS = {"LCMSampler": LCMSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMSampler": "LCM Sampler"}
