"""Latent Consistency Fine-tuning (LCF): consistency training on a captioned dataset,
without a teacher (LCM paper, section 4.3).

The same noise is added to the same latent at two adjacent skipping-step timesteps
t_{n+k} and t_n; the student's consistency function at t_{n+k} is pulled towards the EMA
target network's at t_n, both under LCM's boundary conditions (c_skip, c_out).
"""

from __future__ import annotations

import dataclasses

import torch

from .config import TrainingConfig
from .consistency import NoiseSchedule, consistency_loss, guidance_scale_embedding
from .dataset import EncodedDataset, TextCondition
from .loop import LossFn, TrainingResult, train
from .student import Student


def guidance_condition(student: Student, config: TrainingConfig, batch: int, generator: torch.Generator,
                       device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`w ~ U[w_min, w_max]` per example, and its embedding for UNets that take one."""
    w = config.w_min + (config.w_max - config.w_min) * torch.rand(batch, generator=generator)
    w = w.to(device)
    dim = student.time_cond_dim
    return w, (guidance_scale_embedding(w, dim) if dim else None)


def build_lcf_loss(student: Student, schedule: NoiseSchedule, data: EncodedDataset,
                   config: TrainingConfig) -> LossFn:
    """The LCF loss of one batch of latents and their text condition."""

    def loss_fn(latents: torch.Tensor, text: TextCondition, generator: torch.Generator) -> torch.Tensor:
        batch, device = latents.shape[0], latents.device
        _, start, end = schedule.solver.sample_timesteps(batch, generator, device)
        noise = torch.randn(latents.shape, generator=generator).to(device)
        x_start = schedule.add_noise(latents, noise, start)
        x_end = schedule.add_noise(latents, noise, end)
        _, cond = guidance_condition(student, config, batch, generator, device)
        out = student.forward(x_start, start, timestep_cond=cond, **text.unet_kwargs()).sample
        pred = schedule.consistency(out, start, x_start)
        with torch.no_grad():
            target_out = student.target_forward(x_end, end, timestep_cond=cond, **text.unet_kwargs()).sample
            target = schedule.consistency(target_out, end, x_end)
        return consistency_loss(pred, target, config.loss, config.huber_c)

    return loss_fn


def train_lcf(model, clip, vae, config: TrainingConfig) -> TrainingResult:
    """Fine-tune `model` (an LCM, or a model with an LCM-LoRA applied) on `config.dataset_dir`
    by consistency training: a LoRA of `config.lora_rank`, or the full UNet when it is 0."""
    return train(model, clip, vae, dataclasses.replace(config, method="lcf"), build_lcf_loss)
