"""Pre-training of the shapes family's base parts: the VAE, then the text encoder and the
teacher UNet together (the LCM-LoRA and the LCF style LoRA are then
trained by `lcm_core.training`, like any user's).

Both loops draw batches from rendered shapes images held in memory, are seeded, and
report `(step, loss, seconds)` through a callback.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch

from .family import SCHEDULES, build_text_encoder, build_unet, build_vae
from .shapes import SIZE, sample

Report = Callable[[str, int, float, float], None]


def render_set(count: int, seed: int, striped_fraction: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """`count` shapes examples of dataset `seed` as uint8 `[N, 64, 64, 3]` and their captions."""
    images = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    captions = []
    for i in range(count):
        image, caption, _ = sample(seed, i, striped_fraction)
        images[i] = np.asarray(image)
        captions.append(caption)
    return images, captions


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` → float `[N, 3, H, W]` in [-1, 1], as the VAE takes them."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _cosine_lr(step: int, steps: int, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _foreground(pixels: torch.Tensor) -> torch.Tensor:
    """1 where a pixel differs from the image's corner (always background here), `[N, 1, H, W]`."""
    return ((pixels - pixels[:, :, :1, :1]).abs().amax(dim=1, keepdim=True) > 0.05).float()


def _reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, foreground_weight: float) -> torch.Tensor:
    """L1 + squared error per pixel, the shape's pixels weighted `1 + foreground_weight`."""
    weight = 1.0 + foreground_weight * _foreground(x)
    error = (recon - x).abs() + (recon - x).pow(2)
    return (error * weight).sum() / (weight.sum() * 3)


def train_vae(images: np.ndarray, steps: int, batch: int = 16, lr: float = 2e-3, kl_weight: float = 1e-6,
              foreground_weight: float = 10.0, seed: int = 0, report: Report | None = None):
    """Train an AutoencoderKL on `images` (L1 + MSE reconstruction, with the shape's pixels
    weighted `1 + foreground_weight` since they are a tenth of the image; a small KL term),
    then set its `scaling_factor` to 1 / std of the latents, as SD's VAEs are scaled."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    vae = build_vae().train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine_lr(s, steps, steps // 20))
    start = time.perf_counter()
    for step in range(steps):
        index = torch.randint(len(images), (batch,), generator=generator).numpy()
        x = to_pixels(images[index])
        posterior = vae.encode(x).latent_dist
        rec_loss = _reconstruction_loss(vae.decode(posterior.sample(generator)).sample, x, foreground_weight)
        loss = rec_loss + kl_weight * posterior.kl().mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if report:
            report("vae", step + 1, rec_loss.item(), time.perf_counter() - start)
    vae.eval().requires_grad_(False)
    latents = encode_latents(vae, images[:2048])
    mean, logvar = latents.chunk(2, dim=1)
    std = float(torch.sqrt((mean.var() + logvar.exp().mean())))
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    return vae


def finetune_decoder(vae, images: np.ndarray, steps: int, batch: int = 16, lr: float = 1e-3,
                     foreground_weight: float = 10.0, seed: int = 1, report: Report | None = None):
    """Train only the decoder (and `post_quant_conv`) on `images` with the encoder frozen:
    the latent space, and so the teacher trained on it, stays as it is, while the decoder
    learns detail the first pass never saw (the LCF style's stripes)."""
    generator = torch.Generator().manual_seed(seed)
    vae.requires_grad_(False)
    trainable = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for param in trainable:
        param.requires_grad_(True)
    vae.train()
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine_lr(s, steps, steps // 20))
    start = time.perf_counter()
    for step in range(steps):
        index = torch.randint(len(images), (batch,), generator=generator).numpy()
        x = to_pixels(images[index])
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.sample(generator)
        loss = _reconstruction_loss(vae.decode(latents).sample, x, foreground_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if report:
            report("vae-decoder", step + 1, loss.item(), time.perf_counter() - start)
    return vae.eval().requires_grad_(False)


def encode_latents(vae, images: np.ndarray, chunk: int = 256) -> torch.Tensor:
    """The VAE posterior's mean and log-variance `[N, 8, h, w]` of `images`, in chunks."""
    from ..training.dataset import encode_images

    return torch.cat([encode_images(vae, to_pixels(images[i:i + chunk])) for i in range(0, len(images), chunk)])


def _loss_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float,
                  prediction_type: str) -> torch.Tensor:
    """Per-example loss weights. Epsilon: min-SNR-`gamma` (x0 error weighted `min(SNR,
    gamma)`). v: the x0 error weighted `min(SNR + 1, gamma)`, i.e. the plain v-loss where
    the signal is gone, capped where it is clear (`min(SNR, gamma)` would give the
    zero-SNR end, where the prompt alone decides the layout, no weight at all)."""
    alpha_bar = alphas_cumprod[timesteps]
    if prediction_type == "epsilon":
        snr = alpha_bar / (1 - alpha_bar)
        return torch.clamp(snr, max=gamma) / snr
    snr_plus_one = 1 / (1 - alpha_bar)
    return torch.clamp(snr_plus_one, max=gamma) / snr_plus_one


def train_teacher(vae, tokenizer, images: np.ndarray, captions: list[str], steps: int, batch: int = 64,
                  lr: float = 1e-3, cfg_dropout: float = 0.1, snr_gamma: float = 5.0, ema_decay: float = 0.999,
                  seed: int = 0, schedule: str = "sd", report: Report | None = None):
    """Train a CLIP text encoder and a UNet jointly on (image, caption) pairs over
    `SCHEDULES[schedule]` (its prediction type is the UNet's target), with the caption
    dropped to "" for `cfg_dropout` of the examples (so CFG works) and `_loss_weights`.
    Returns the EMA `(text_encoder, unet)`."""
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    posterior = encode_latents(vae, images)
    scale = float(vae.config.scaling_factor)
    ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    empty = tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    config = SCHEDULES[schedule]
    noise_schedule = DDPMScheduler.from_config({k: v for k, v in config.items() if k != "_class_name"})
    alphas_cumprod = noise_schedule.alphas_cumprod
    text_encoder, unet = build_text_encoder(tokenizer).train(), build_unet().train()
    modules = torch.nn.ModuleList([text_encoder, unet])
    ema = {n: p.detach().clone() for n, p in modules.named_parameters()}
    optimizer = torch.optim.AdamW(modules.parameters(), lr=lr, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine_lr(s, steps, steps // 20))
    start = time.perf_counter()
    for step in range(steps):
        index = torch.randint(len(images), (batch,), generator=generator)
        mean, logvar = posterior[index].chunk(2, dim=1)
        latents = (mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator)) * scale
        tokens = torch.where((torch.rand(batch, generator=generator) < cfg_dropout)[:, None], empty, ids[index])
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, len(alphas_cumprod), (batch,), generator=generator)
        noisy = noise_schedule.add_noise(latents, noise, t)
        context = text_encoder(tokens).last_hidden_state
        pred = unet(noisy, t, encoder_hidden_states=context).sample
        target = noise if config["prediction_type"] == "epsilon" else noise_schedule.get_velocity(latents, noise, t)
        per_example = (pred - target).pow(2).mean(dim=(1, 2, 3))
        loss = (per_example * _loss_weights(alphas_cumprod, t, snr_gamma, config["prediction_type"])).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, param in modules.named_parameters():
                ema[name].lerp_(param.detach(), 1 - decay)
        if report:
            report("teacher", step + 1, per_example.mean().item(), time.perf_counter() - start)
    with torch.no_grad():
        for name, param in modules.named_parameters():
            param.copy_(ema[name])
    return text_encoder.eval().requires_grad_(False), unet.eval().requires_grad_(False)
