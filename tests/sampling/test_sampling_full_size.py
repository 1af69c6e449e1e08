"""The real SD1.5 architecture (LCM-distilled UNet, SD1.5 VAE), random fp32 weights,
samples 64×64 in 4 steps on the CPU and matches diffusers' LCM pipeline."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest
import torch
from diffusers import LatentConsistencyModelPipeline, LCMScheduler

from lcm_core.conditioning import LCMConditioning
from lcm_core.images import decode
from lcm_core.sampling import SamplingOptions, sample
from support.tiny_models import SCHEDULER_CONFIG, full_size_sd15, model_handle, vae_handle, zero_latent


@pytest.mark.slow
def test_full_size_sd15_lcm_samples_64px_in_4_steps_like_diffusers():
    unet, vae = full_size_sd15(lcm=True, seed=0)
    assert unet.config.time_cond_proj_dim == 256 and sum(p.numel() for p in unet.parameters()) > 850e6
    embeds = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1))
    positive = LCMConditioning(embeds=embeds, family="sd15")
    options = SamplingOptions(seed=42, steps=4, guidance_scale=8.0)

    start = time.perf_counter()
    image = decode(vae_handle(vae), sample(model_handle(unet), positive, zero_latent(), options)).numpy()
    took = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"full-size SD1.5 LCM, 64x64, 4 steps, fp32 CPU: sample+decode {took:.1f} s, peak RSS {peak_mb:.0f} MB")

    pipe = LatentConsistencyModelPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet,
                                          scheduler=LCMScheduler.from_config(SCHEDULER_CONFIG), safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(prompt_embeds=embeds, num_inference_steps=4, guidance_scale=8.0, height=64, width=64,
               generator=torch.Generator().manual_seed(42), output_type="np").images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()
    assert np.abs(image - ref).max() <= 1e-4
