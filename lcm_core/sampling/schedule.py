"""Scheduler choice and the timestep schedule, including img2img's low-denoise edge."""

from __future__ import annotations

import logging

from .options import SamplingOptions

log = logging.getLogger("lcm_core.sampling")


def make_scheduler(model, options: SamplingOptions):
    """A fresh `LCMScheduler` or `TCDScheduler` from the model's scheduler config.

    The model's prediction type and the run's `original_inference_steps` go into the
    config (TCD reads the latter only from its config on the standard schedule).
    """
    from diffusers import LCMScheduler, TCDScheduler

    cls = LCMScheduler if options.sampler == "lcm" else TCDScheduler
    return cls.from_config(model.scheduler_config, prediction_type=model.prediction_type,
                           original_inference_steps=options.original_inference_steps)


def set_schedule(scheduler, options: SamplingOptions):
    """Set the scheduler's timesteps for `options` and return them (never empty).

    diffusers' LCM/TCD img2img keeps only the `int(original_steps * denoise)` lowest
    distillation timesteps and fails when fewer than `steps` remain; here the run then
    takes as many steps as remain, at least one (the lowest timestep), and says so.
    """
    strength = options.denoise
    if options.timesteps:
        count = len(options.timesteps)
        if int(count * strength) < 1:
            log.warning("denoise %.3g keeps none of the %d given timesteps; running one step at timestep %d",
                        options.denoise, count, options.timesteps[-1])
            strength = 1.5 / count
        scheduler.set_timesteps(timesteps=list(options.timesteps), strength=strength)
        return scheduler.timesteps
    original = options.original_inference_steps
    available = int(original * strength)
    steps = options.steps
    if available < steps:
        steps = max(available, 1)
        if available < 1:
            strength = 1.5 / original
        log.warning("denoise %.3g leaves %d of the %d distillation timesteps below it; running %d step(s) instead "
                    "of %d", options.denoise, available, original, steps, options.steps)
    scheduler.set_timesteps(num_inference_steps=steps, strength=strength)
    return scheduler.timesteps
