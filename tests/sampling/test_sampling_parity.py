"""Our sampler against diffusers' reference pipelines: same weights, seed and settings,
fp32 on CPU, max abs difference ≤ 1e-4 on the decoded image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (LatentConsistencyModelImg2ImgPipeline, LatentConsistencyModelPipeline, LCMScheduler,
                       StableDiffusionPipeline, StableDiffusionXLPipeline, TCDScheduler)

from lcm_core.images import decode, encode
from lcm_core.sampling import SamplingOptions, sample
from support.tiny_models import (SCHEDULER_CONFIG, conditioning, model_handle, random_image, tiny_unet, tiny_vae,
                                 vae_handle, zero_latent)

TOL = 1e-4
SEED = 1234


@pytest.fixture(scope="module")
def sd15():
    return {"lcm": tiny_unet(lcm=True, seed=1), "plain": tiny_unet(seed=2), "vae": tiny_vae(seed=3)}


@pytest.fixture(scope="module")
def sdxl():
    return {"plain": tiny_unet("sdxl", seed=4), "lcm": tiny_unet("sdxl", lcm=True, seed=6),
            "vae": tiny_vae("sdxl", seed=5)}


def _pipe(cls, unet, vae, scheduler, **extra):
    if cls is StableDiffusionXLPipeline:
        parts = dict(text_encoder=None, text_encoder_2=None, tokenizer=None, tokenizer_2=None, add_watermarker=False)
    else:
        parts = dict(text_encoder=None, tokenizer=None, safety_checker=None, feature_extractor=None,
                     requires_safety_checker=False)
    pipe = cls(vae=vae, unet=unet, scheduler=scheduler, **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _ours(unet, vae, positive, options, *, negative=None, latent=None, family="sd15", config=None,
          prediction_type="epsilon"):
    model = model_handle(unet, family, scheduler_config=config, prediction_type=prediction_type)
    out = sample(model, positive, latent or zero_latent(), options, negative=negative)
    return decode(vae_handle(vae, family), out).numpy()


def _gen(seed=SEED):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("guidance", [1.0, 4.0, 8.5])
def test_lcm_txt2img_matches_latent_consistency_pipeline(sd15, steps, guidance):
    pos = conditioning(seed=10)
    pipe = _pipe(LatentConsistencyModelPipeline, sd15["lcm"], sd15["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, num_inference_steps=steps, guidance_scale=guidance, height=64, width=64,
               generator=_gen(), output_type="np").images
    ours = _ours(sd15["lcm"], sd15["vae"], pos, SamplingOptions(seed=SEED, steps=steps, guidance_scale=guidance))
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("strength", [0.3, 0.6, 0.9])
def test_lcm_img2img_matches_latent_consistency_img2img_pipeline(sd15, steps, strength):
    pos = conditioning(seed=11)
    latent = encode(vae_handle(sd15["vae"]), random_image(seed=7))
    pipe = _pipe(LatentConsistencyModelImg2ImgPipeline, sd15["lcm"], sd15["vae"],
                 LCMScheduler.from_config(SCHEDULER_CONFIG))
    # A 4-channel tensor is taken as the (scaled) initial latent, skipping the VAE's sampling.
    ref = pipe(prompt_embeds=pos.embeds, image=latent["samples"] * sd15["vae"].config.scaling_factor,
               num_inference_steps=steps, strength=strength, guidance_scale=6.0, generator=_gen(),
               output_type="np").images
    ours = _ours(sd15["lcm"], sd15["vae"], pos, SamplingOptions(seed=SEED, steps=steps, guidance_scale=6.0,
                                                                denoise=strength), latent=latent)
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("guidance", [1.0, 1.5, 2.0])
def test_lcm_lora_cfg_with_negative_matches_stable_diffusion_pipeline(sd15, steps, guidance):
    pos, neg = conditioning(seed=12), conditioning(seed=13)
    pipe = _pipe(StableDiffusionPipeline, sd15["plain"], sd15["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, negative_prompt_embeds=neg.embeds, num_inference_steps=steps,
               guidance_scale=guidance, height=64, width=64, generator=_gen(), output_type="np").images
    ours = _ours(sd15["plain"], sd15["vae"], pos, SamplingOptions(seed=SEED, steps=steps, guidance_scale=guidance),
                 negative=neg)
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_sdxl_matches_stable_diffusion_xl_pipeline(sdxl, steps, guidance):
    pos, neg = conditioning("sdxl", seed=14), conditioning("sdxl", seed=15)
    pipe = _pipe(StableDiffusionXLPipeline, sdxl["plain"], sdxl["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, pooled_prompt_embeds=pos.pooled, negative_prompt_embeds=neg.embeds,
               negative_pooled_prompt_embeds=neg.pooled, num_inference_steps=steps, guidance_scale=guidance,
               height=64, width=96, generator=_gen(), output_type="np").images
    ours = _ours(sdxl["plain"], sdxl["vae"], pos, SamplingOptions(seed=SEED, steps=steps, guidance_scale=guidance),
                 negative=neg, latent=zero_latent(height=64, width=96), family="sdxl")
    assert ours.shape == ref.shape == (1, 64, 96, 3)
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("steps", [2, 4])
def test_sdxl_lcm_distilled_matches_stable_diffusion_xl_pipeline(sdxl, steps):
    """An LCM-distilled SDXL UNet: guidance embedded, no CFG (diffusers skips CFG when the
    UNet has `time_cond_proj_dim`), with SDXL's added conditioning."""
    pos = conditioning("sdxl", seed=22)
    pipe = _pipe(StableDiffusionXLPipeline, sdxl["lcm"], sdxl["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, pooled_prompt_embeds=pos.pooled, num_inference_steps=steps,
               guidance_scale=8.0, height=64, width=64, generator=_gen(), output_type="np").images
    ours = _ours(sdxl["lcm"], sdxl["vae"], pos, SamplingOptions(seed=SEED, steps=steps, guidance_scale=8.0),
                 family="sdxl")
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_tcd_matches_stable_diffusion_pipeline_with_tcd_scheduler(sd15, steps, gamma):
    pos, neg = conditioning(seed=16), conditioning(seed=17)
    pipe = _pipe(StableDiffusionPipeline, sd15["plain"], sd15["vae"], TCDScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, negative_prompt_embeds=neg.embeds, num_inference_steps=steps,
               guidance_scale=1.5, eta=gamma, height=64, width=64, generator=_gen(), output_type="np").images
    options = SamplingOptions(seed=SEED, steps=steps, guidance_scale=1.5, sampler="tcd", tcd_gamma=gamma)
    ours = _ours(sd15["plain"], sd15["vae"], pos, options, negative=neg)
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
@pytest.mark.parametrize("sampler", ["lcm", "tcd"])
def test_prediction_types_follow_the_scheduler(sd15, prediction_type, sampler):
    pos = conditioning(seed=18)
    config = dict(SCHEDULER_CONFIG, prediction_type=prediction_type)
    cls = LCMScheduler if sampler == "lcm" else TCDScheduler
    pipe = _pipe(StableDiffusionPipeline, sd15["plain"], sd15["vae"], cls.from_config(config))
    ref = pipe(prompt_embeds=pos.embeds, num_inference_steps=4, guidance_scale=1.0, eta=0.3, height=64, width=64,
               generator=_gen(), output_type="np").images
    options = SamplingOptions(seed=SEED, steps=4, guidance_scale=1.0, sampler=sampler)
    ours = _ours(sd15["plain"], sd15["vae"], pos, options, prediction_type=prediction_type)
    assert np.abs(ours - ref).max() <= TOL
    eps = _ours(sd15["plain"], sd15["vae"], pos, options)
    assert np.abs(ours - eps).max() > 1e-2, "the prediction type must change the result"


@pytest.mark.parametrize("timesteps", [(999, 749, 499, 249), (999, 499), (899, 599, 299, 99)])
def test_explicit_timesteps_match_pipeline(sd15, timesteps):
    pos = conditioning(seed=19)
    pipe = _pipe(LatentConsistencyModelPipeline, sd15["lcm"], sd15["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, timesteps=list(timesteps), guidance_scale=8.0, height=64, width=64,
               generator=_gen(), output_type="np").images
    ours = _ours(sd15["lcm"], sd15["vae"], pos, SamplingOptions(seed=SEED, steps=4, guidance_scale=8.0,
                                                                timesteps=timesteps))
    assert np.abs(ours - ref).max() <= TOL


@pytest.mark.parametrize("original", [25, 100])
def test_original_inference_steps_match_pipeline(sd15, original):
    pos = conditioning(seed=20)
    pipe = _pipe(LatentConsistencyModelPipeline, sd15["lcm"], sd15["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, num_inference_steps=4, original_inference_steps=original, guidance_scale=8.0,
               height=64, width=64, generator=_gen(), output_type="np").images
    ours = _ours(sd15["lcm"], sd15["vae"], pos, SamplingOptions(seed=SEED, steps=4, guidance_scale=8.0,
                                                                original_inference_steps=original))
    assert np.abs(ours - ref).max() <= TOL


def test_batch_of_four_is_seed_plus_index_per_image(sd15):
    """Image k of a batch from seed s is diffusers with generator `seed s + k` for that
    image, and equals a single-image run with seed s + k."""
    pos = conditioning(seed=21)
    pipe = _pipe(LatentConsistencyModelPipeline, sd15["lcm"], sd15["vae"], LCMScheduler.from_config(SCHEDULER_CONFIG))
    ref = pipe(prompt_embeds=pos.embeds, num_inference_steps=4, guidance_scale=8.0, height=64, width=64,
               num_images_per_prompt=4, generator=[_gen(SEED + k) for k in range(4)], output_type="np").images
    options = SamplingOptions(seed=SEED, steps=4, guidance_scale=8.0)
    batch = _ours(sd15["lcm"], sd15["vae"], pos, options, latent=zero_latent(batch=4))
    assert batch.shape == (4, 64, 64, 3)
    assert np.abs(batch - ref).max() <= TOL
    for k in range(4):
        single = _ours(sd15["lcm"], sd15["vae"], pos, SamplingOptions(seed=SEED + k, steps=4, guidance_scale=8.0))
        assert np.abs(batch[k:k + 1] - single).max() <= TOL
    assert np.abs(batch[0] - batch[1]).max() > 1e-2
