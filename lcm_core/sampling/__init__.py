"""LCM and TCD sampling: txt2img and img2img on ComfyUI LATENTs, built on diffusers'
`LCMScheduler` and `TCDScheduler`, matching diffusers' reference pipelines."""

from .options import GUIDANCE_ADVICE, GuidanceAdvice, SamplingOptions, parse_timesteps
from .sampler import image_seeds, sample

__all__ = ["GUIDANCE_ADVICE", "GuidanceAdvice", "SamplingOptions", "image_seeds", "parse_timesteps", "sample"]
