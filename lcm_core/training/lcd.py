"""Latent Consistency Distillation (LCD) of an LCM-LoRA from an SD teacher, as in the
LCM-LoRA report and diffusers' `train_lcm_distill_lora_sd_wds.py`.

Per example: z at t_{n+k}; the frozen teacher (the same UNet with the LoRA off) gives a
CFG estimate at a guidance w ~ U[w_min, w_max] (LCM form: cond + w (cond - uncond));
one DDIM step takes z to t_n; the student-with-LoRA at (z_{t_{n+k}}, t_{n+k}) is pulled
towards the target network at (z_{t_n}, t_n), both under the boundary conditions.
"""

from __future__ import annotations

import dataclasses

import torch

from .config import TrainingConfig
from .consistency import NoiseSchedule, append_dims, consistency_loss
from .dataset import EncodedDataset, TextCondition
from .lcf import guidance_condition
from .loop import LossFn, TrainingResult, train
from .student import Student


def build_lcd_loss(student: Student, schedule: NoiseSchedule, data: EncodedDataset,
                   config: TrainingConfig) -> LossFn:
    """The LCD loss of one batch of latents and their text condition."""
    uncond = data.uncond

    def loss_fn(latents: torch.Tensor, text: TextCondition, generator: torch.Generator) -> torch.Tensor:
        batch, device = latents.shape[0], latents.device
        index, start, end = schedule.solver.sample_timesteps(batch, generator, device)
        noise = torch.randn(latents.shape, generator=generator).to(device)
        x_start = schedule.add_noise(latents, noise, start)
        w, cond = guidance_condition(student, config, batch, generator, device)
        out = student.forward(x_start, start, timestep_cond=cond, **text.unet_kwargs()).sample
        pred = schedule.consistency(out, start, x_start)
        with torch.no_grad():
            x_in, t_in = torch.cat([x_start, x_start]), torch.cat([start, start])
            with student.teacher() as teacher:
                both = teacher(x_in, t_in, **text.with_uncond(uncond).unet_kwargs()).sample
            x0_c, x0_u = schedule.x0(both, t_in, x_in).float().chunk(2)
            eps_c, eps_u = schedule.eps(both, t_in, x_in).float().chunk(2)
            w = append_dims(w, latents.ndim)
            x_prev = schedule.solver.ddim_step(x0_c + w * (x0_c - x0_u), eps_c + w * (eps_c - eps_u), index)
            target_out = student.target_forward(x_prev, end, timestep_cond=cond, **text.unet_kwargs()).sample
            target = schedule.consistency(target_out, end, x_prev)
        return consistency_loss(pred, target, config.loss, config.huber_c)

    return loss_fn


def train_lcd(model, clip, vae, config: TrainingConfig) -> TrainingResult:
    """Distil an LCM-LoRA (rank `config.lora_rank`, 64 by default) from the teacher `model`
    on the captions and images of `config.dataset_dir`."""
    return train(model, clip, vae, dataclasses.replace(config, method="lcd"), build_lcd_loss)
