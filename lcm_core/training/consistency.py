"""The consistency-model maths shared by LCF and LCD.

Ported from diffusers' `examples/consistency_distillation/train_lcm_distill_*_wds.py`
(which follow the LCM paper, arXiv:2310.04378, Algorithm 1 and the LCM-LoRA report,
arXiv:2311.05556), so a student trained here samples with diffusers' `LCMScheduler`.
"""

from __future__ import annotations

import math

import torch


def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
    """`x` with trailing singleton dimensions up to `target_dims`."""
    return x[(...,) + (None,) * (target_dims - x.ndim)]


def scalings_for_boundary_conditions(timestep: torch.Tensor, sigma_data: float = 0.5,
                                     timestep_scaling: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """`(c_skip, c_out)` of the LCM parameterisation f(x, t) = c_skip x + c_out x0(x, t);
    as `LCMScheduler.get_scalings_for_boundary_condition_discrete`."""
    scaled = timestep_scaling * timestep.float()
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


def _extract(a: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    return append_dims(a.gather(-1, t), ndim)


def predicted_original_sample(model_output: torch.Tensor, timesteps: torch.Tensor, sample: torch.Tensor,
                              prediction_type: str, alphas: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """x0 from the UNet output at `timesteps` (`alphas`/`sigmas` = sqrt of ᾱ / 1-ᾱ)."""
    alpha = _extract(alphas, timesteps, sample.ndim)
    sigma = _extract(sigmas, timesteps, sample.ndim)
    if prediction_type == "epsilon":
        return (sample - sigma * model_output) / alpha
    if prediction_type == "sample":
        return model_output
    if prediction_type == "v_prediction":
        return alpha * sample - sigma * model_output
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


def predicted_noise(model_output: torch.Tensor, timesteps: torch.Tensor, sample: torch.Tensor,
                    prediction_type: str, alphas: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """ε from the UNet output at `timesteps` (step 4 of `DDIMScheduler.step`)."""
    alpha = _extract(alphas, timesteps, sample.ndim)
    sigma = _extract(sigmas, timesteps, sample.ndim)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return (sample - alpha * model_output) / sigma
    if prediction_type == "v_prediction":
        return alpha * model_output + sigma * sample
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


class DDIMSolver:
    """The skipping-step schedule [k-1, 2k-1, ..., T-1] and one DDIM step across it.

    With T=1000 train timesteps and 50 DDIM timesteps the skipping interval k is 20.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, timesteps: int = 1000, ddim_timesteps: int = 50):
        step_ratio = timesteps // ddim_timesteps
        self.step_ratio = step_ratio
        self.ddim_timesteps = torch.arange(1, ddim_timesteps + 1, dtype=torch.long) * step_ratio - 1
        self.ddim_alpha_cumprods = alphas_cumprod[self.ddim_timesteps]
        self.ddim_alpha_cumprods_prev = torch.cat([alphas_cumprod[:1], alphas_cumprod[self.ddim_timesteps[:-1]]])

    def to(self, device: torch.device) -> "DDIMSolver":
        self.ddim_timesteps = self.ddim_timesteps.to(device)
        self.ddim_alpha_cumprods = self.ddim_alpha_cumprods.to(device)
        self.ddim_alpha_cumprods_prev = self.ddim_alpha_cumprods_prev.to(device)
        return self

    def ddim_step(self, pred_x0: torch.Tensor, pred_noise: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x at the previous skipping-step timestep (η = 0 DDIM)."""
        prev = _extract(self.ddim_alpha_cumprods_prev, index, pred_x0.ndim)
        return prev.sqrt() * pred_x0 + (1.0 - prev).sqrt() * pred_noise

    def sample_timesteps(self, batch: int, generator: torch.Generator, device: torch.device):
        """`(index, t_{n+k}, t_n)` drawn uniformly from the skipping-step schedule."""
        index = torch.randint(0, len(self.ddim_timesteps), (batch,), generator=generator).to(device)
        start = self.ddim_timesteps.to(device)[index]
        end = torch.clamp(start - self.step_ratio, min=0)
        return index, start, end


def guidance_scale_embedding(w: torch.Tensor, embedding_dim: int = 512, dtype=torch.float32) -> torch.Tensor:
    """The sinusoidal embedding of the guidance scale an LCM-distilled UNet takes as
    `timestep_cond` (as `LatentConsistencyModelPipeline.get_guidance_scale_embedding`)."""
    w = w.flatten() * 1000.0
    half = embedding_dim // 2
    freq = torch.exp(torch.arange(half, dtype=dtype, device=w.device) * -(math.log(10000.0) / (half - 1)))
    emb = w.to(dtype)[:, None] * freq[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def consistency_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "huber", huber_c: float = 0.001):
    """Pseudo-Huber (`sqrt(d² + c²) - c`, c = 0.001 by default) or L2 between the
    student's and the target's consistency-function outputs."""
    pred, target = pred.float(), target.float()
    if kind == "l2":
        return torch.nn.functional.mse_loss(pred, target)
    if kind == "huber":
        return torch.mean(torch.sqrt((pred - target) ** 2 + huber_c**2) - huber_c)
    raise ValueError(f"unknown loss {kind!r}; use 'huber' or 'l2'")


class NoiseSchedule:
    """The teacher's forward process (√ᾱ, √(1-ᾱ)) and the skipping-step solver on one device."""

    def __init__(self, scheduler_config: dict, prediction_type: str, num_ddim_timesteps: int,
                 timestep_scaling: float, device: torch.device):
        from diffusers import DDPMScheduler

        ddpm = DDPMScheduler.from_config(scheduler_config)
        alphas_cumprod = ddpm.alphas_cumprod.float()
        self.num_train_timesteps = ddpm.config.num_train_timesteps
        self.prediction_type = prediction_type
        self.timestep_scaling = timestep_scaling
        self.alphas = alphas_cumprod.sqrt().to(device)
        self.sigmas = (1 - alphas_cumprod).sqrt().to(device)
        self.solver = DDIMSolver(alphas_cumprod, self.num_train_timesteps, num_ddim_timesteps).to(device)

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return _extract(self.alphas, t, latents.ndim) * latents + _extract(self.sigmas, t, latents.ndim) * noise

    def x0(self, model_output: torch.Tensor, t: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        return predicted_original_sample(model_output, t, sample, self.prediction_type, self.alphas, self.sigmas)

    def eps(self, model_output: torch.Tensor, t: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        return predicted_noise(model_output, t, sample, self.prediction_type, self.alphas, self.sigmas)

    def consistency(self, model_output: torch.Tensor, t: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """f(x, t) = c_skip(t) x + c_out(t) x0(x, t): the LCM output with boundary conditions."""
        c_skip, c_out = scalings_for_boundary_conditions(t, timestep_scaling=self.timestep_scaling)
        c_skip, c_out = append_dims(c_skip, sample.ndim), append_dims(c_out, sample.ndim)
        return c_skip * sample + c_out * self.x0(model_output, t, sample)
