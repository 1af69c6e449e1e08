"""Sampling behaviour beyond parity: determinism, img2img edges, bad inputs, warnings,
progress, interruption, previews."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from lcm_core import progress
from lcm_core.errors import FamilyMismatchError, InputError, Interrupted
from lcm_core.images import encode
from lcm_core.sampling import SamplingOptions, parse_timesteps, sample
from lcm_core.sampling.preview import latent_to_rgb
from support.tiny_models import conditioning, model_handle, random_image, tiny_unet, tiny_vae, vae_handle, zero_latent


@pytest.fixture(scope="module")
def lcm():
    return model_handle(tiny_unet(lcm=True, seed=1))


@pytest.fixture(scope="module")
def lora():
    return model_handle(tiny_unet(seed=2), method="lcm-lora")


@pytest.fixture(scope="module")
def image_latent():
    return encode(vae_handle(tiny_vae(seed=3)), random_image(seed=4))


class Recorder:
    """A progress reporter that records steps and can ask to stop after step `stop_after`."""

    def __init__(self, stop_after: int | None = None):
        self.steps = []
        self.stop_after = stop_after

    def step(self, step):
        self.steps.append(step)

    def interrupted(self):
        return self.stop_after is not None and len(self.steps) >= self.stop_after


def _run(model, options, latent=None, negative=None, positive=None):
    recorder = Recorder()
    with progress.use(recorder):
        out = sample(model, positive or conditioning(), latent or zero_latent(), options, negative=negative)
    return out, [s.t for s in recorder.steps]


def test_same_seed_is_bit_identical_and_another_seed_differs(lcm):
    options = SamplingOptions(seed=7, steps=4, guidance_scale=8.0)
    a, _ = _run(lcm, options)
    b, _ = _run(lcm, options)
    c, _ = _run(lcm, SamplingOptions(seed=8, steps=4, guidance_scale=8.0))
    assert torch.equal(a["samples"], b["samples"])
    assert not torch.allclose(a["samples"], c["samples"])


def test_denoise_one_is_txt2img_bit_exact(lcm, image_latent):
    options = SamplingOptions(seed=3, steps=4, guidance_scale=8.0, denoise=1.0)
    from_image, _ = _run(lcm, options, latent=image_latent)
    from_empty, _ = _run(lcm, options, latent=zero_latent())
    assert torch.equal(from_image["samples"], from_empty["samples"])


@pytest.mark.parametrize("denoise, steps, expected", [
    (0.01, 4, [19]),        # no distillation timestep below 10: one step at the lowest
    (0.05, 4, [39, 19]),    # two of fifty timesteps remain: two steps, not an error
    (0.5, 4, [499, 379, 259, 139]),
])
def test_low_denoise_still_runs_at_least_one_step(lcm, image_latent, denoise, steps, expected, caplog):
    options = SamplingOptions(seed=3, steps=steps, guidance_scale=8.0, denoise=denoise)
    with caplog.at_level(logging.WARNING, logger="lcm_core"):
        out, timesteps = _run(lcm, options, latent=image_latent)
    assert timesteps == expected
    assert not torch.equal(out["samples"], image_latent["samples"])
    assert (len(expected) < steps) == any("denoise" in r.getMessage() for r in caplog.records)


def test_low_denoise_with_explicit_timesteps_keeps_the_last(lcm, image_latent):
    options = SamplingOptions(seed=3, guidance_scale=8.0, denoise=0.1, timesteps=(999, 749, 499, 249))
    _, timesteps = _run(lcm, options, latent=image_latent)
    assert timesteps == [249]


def test_explicit_timesteps_replace_steps(lcm):
    _, timesteps = _run(lcm, SamplingOptions(steps=8, timesteps=parse_timesteps("999, 749,499 ,249")))
    assert timesteps == [999, 749, 499, 249]


@pytest.mark.parametrize("text", ["999,abc", "249,499", "1000,10", "5,5"])
def test_bad_timesteps_text_is_refused(text):
    with pytest.raises(InputError) as err:
        parse_timesteps(text)
    assert err.value.input_name == "timesteps"


@pytest.mark.parametrize("field, value", [("steps", 0), ("steps", 51), ("denoise", 0.0), ("denoise", 1.5),
                                          ("tcd_gamma", 1.5), ("original_inference_steps", 0)])
def test_bad_options_are_refused(lcm, field, value):
    options = SamplingOptions(**{field: value})
    with pytest.raises(InputError) as err:
        sample(lcm, conditioning(), zero_latent(), options)
    assert err.value.input_name == field


def test_latent_from_another_family_is_refused(lcm):
    with pytest.raises(FamilyMismatchError, match=r"\[1, 16, 8, 8\]") as err:
        sample(lcm, conditioning(), {"samples": torch.zeros(1, 16, 8, 8)}, SamplingOptions())
    assert err.value.input_name == "latent_image" and "SD3" in err.value.details


def test_sdxl_conditioning_on_sd15_model_is_refused(lcm):
    with pytest.raises(FamilyMismatchError, match="SDXL") as err:
        sample(lcm, conditioning("sdxl"), zero_latent(), SamplingOptions())
    assert err.value.input_name == "positive"


def test_cfg_without_negative_is_refused_with_the_fix(lora):
    with pytest.raises(InputError) as err:
        sample(lora, conditioning(), zero_latent(), SamplingOptions(guidance_scale=1.5))
    assert err.value.input_name == "negative" and "guidance_scale to 1.0" in err.value.details
    out = sample(lora, conditioning(), zero_latent(), SamplingOptions(guidance_scale=1.0))
    assert out["samples"].shape == (1, 4, 8, 8)


def test_long_negative_is_repeated_to_the_prompt_length(lora):
    short, long = conditioning(seed=1), conditioning(seed=2, tokens=154)
    repeated = type(short)(embeds=short.embeds.repeat(1, 2, 1), family="sd15")
    options = SamplingOptions(guidance_scale=1.5)
    a = sample(lora, long, zero_latent(), options, negative=short)
    b = sample(lora, long, zero_latent(), options, negative=repeated)
    assert torch.equal(a["samples"], b["samples"])


def test_warnings_for_settings_outside_the_method(lora, caplog):
    with caplog.at_level(logging.WARNING, logger="lcm_core"):
        sample(lora, conditioning(), zero_latent(), SamplingOptions(guidance_scale=7.0), negative=conditioning(seed=1))
    assert any("burn" in r.getMessage() and "lcm-lora" in r.getMessage() for r in caplog.records)
    caplog.clear()
    plain = lora.replace(method="none")
    with caplog.at_level(logging.WARNING, logger="lcm_core"):
        sample(plain, conditioning(), zero_latent(), SamplingOptions(guidance_scale=1.0))
    assert any("neither LCM-distilled" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lcm_core"):
        sample(lora, conditioning(), zero_latent(), SamplingOptions(guidance_scale=1.5), negative=conditioning(seed=1))
    assert not caplog.records


def test_progress_reports_every_step_with_latents(lcm):
    recorder = Recorder()
    with progress.use(recorder):
        out = sample(lcm, conditioning(), zero_latent(batch=2), SamplingOptions(steps=4, guidance_scale=8.0))
    assert [(s.i, s.total) for s in recorder.steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(s.x.shape == s.denoised.shape == (2, 4, 8, 8) for s in recorder.steps)
    assert torch.allclose(recorder.steps[-1].denoised / 0.18215, out["samples"])


def test_interrupt_during_step_two_stops_within_one_step_and_returns_nothing(lcm):
    recorder = Recorder(stop_after=2)
    result = None
    with progress.use(recorder), pytest.raises(Interrupted):
        result = sample(lcm, conditioning(), zero_latent(), SamplingOptions(steps=4, guidance_scale=8.0))
    assert [s.i for s in recorder.steps] == [1, 2]
    assert result is None


def test_batch_index_offsets_the_seed(lcm):
    options = SamplingOptions(seed=100, steps=2, guidance_scale=8.0)
    picked = sample(lcm, conditioning(), dict(zero_latent(), batch_index=[3]), options)
    single = sample(lcm, conditioning(), zero_latent(), SamplingOptions(seed=103, steps=2, guidance_scale=8.0))
    assert torch.allclose(picked["samples"], single["samples"], atol=1e-6)
    assert picked["batch_index"] == [3]


def test_preview_is_comfyui_latent_to_rgb():
    latent = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(0))
    image = latent_to_rgb(latent, "sd15")
    assert image.size == (12, 8) and image.mode == "RGB"
    factors = torch.tensor([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
                            [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]])
    expected = ((torch.einsum("chw,cr->hwr", latent[0], factors) + 1) / 2).clamp(0, 1) * 255
    got = torch.from_numpy(np.array(image)).float()
    assert (got - expected.floor()).abs().max() <= 1
    assert latent_to_rgb(latent, "sdxl").getpixel((0, 0)) != image.getpixel((0, 0))


def test_bf16_model_samples_in_fp32_and_returns_fp32_latent():
    """Scheduler maths stays fp32 whatever the UNet's dtype, and LATENTs are always fp32."""
    unet = tiny_unet(lcm=True, seed=1)
    options = SamplingOptions(seed=1, steps=4, guidance_scale=8.0)
    full = sample(model_handle(unet), conditioning(), zero_latent(), options)
    half = sample(model_handle(unet.to(torch.bfloat16)), conditioning(), zero_latent(), options)
    assert half["samples"].dtype == torch.float32
    assert (half["samples"] - full["samples"]).abs().mean() < 0.05 * full["samples"].abs().mean()
