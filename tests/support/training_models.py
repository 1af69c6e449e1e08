"""Tiny SD1.5-shaped models with random weights, wrapped in handles, and small captioned
image folders: what the training tests train on (32 px images, 4x4 latents)."""

from __future__ import annotations

import contextlib

from pathlib import Path

import numpy as np
import torch
from PIL import Image

SD_SCHEDULER = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon", "set_alpha_to_one": False, "steps_offset": 1, "clip_sample": False,
    "timestep_spacing": "leading",
}
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}
SHAPES = ("square", "stripes")


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    tok.model_max_length = 77
    return tok


def tiny_text_encoder(seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=200, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=77, bos_token_id=188, eos_token_id=189,
                            pad_token_id=189)
    return CLIPTextModel(config).eval()


def tiny_unet(seed: int = 0, time_cond_proj_dim: int | None = None):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=4, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8, time_cond_proj_dim=time_cond_proj_dim,
    ).eval()


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=32).eval()


def tiny_handles(seed: int = 0, time_cond_proj_dim: int | None = None):
    """`(LCMModel, LCMClip, LCMVae)` of one tiny SD1.5-shaped model."""
    from lcm_core.models.handles import LCMClip, LCMModel, LCMVae

    model = LCMModel(unet=tiny_unet(seed, time_cond_proj_dim), family="sd15", prediction_type="epsilon",
                     scheduler_config=dict(SD_SCHEDULER), lcm_distilled=time_cond_proj_dim is not None,
                     method="lcm" if time_cond_proj_dim else "none", source="tiny")
    clip = LCMClip(tokenizers=(tiny_tokenizer(),), text_encoders=(tiny_text_encoder(seed),), family="sd15",
                   source="tiny")
    vae = LCMVae(vae=tiny_vae(seed), family="sd15", scaling_factor=0.18215, source="tiny")
    return model, clip, vae


def pattern_image(colour: str, shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A coloured square or striped pattern on a light background, slightly jittered."""
    array = np.full((size, size, 3), 235, dtype=np.float32)
    rgb = np.asarray(COLOURS[colour], dtype=np.float32)
    if shape == "square":
        a, b = size // 4 + rng.integers(-2, 3), 3 * size // 4 + rng.integers(-2, 3)
        array[a:b, a:b] = rgb
    else:
        for row in range(0, size, 8):
            array[row:row + 4] = rgb
    array += rng.normal(0, 6, array.shape)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def write_dataset(folder: Path, count: int = 8, size: int = 40, seed: int = 0, jsonl: bool = False) -> Path:
    """`count` captioned pattern images in `folder` (`.txt` captions, or a metadata.jsonl)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    names = [(c, s) for c in COLOURS for s in SHAPES]
    for i in range(count):
        colour, shape = names[i % len(names)]
        name = f"img{i:03d}.png"
        pattern_image(colour, shape, size, rng).save(folder / name)
        caption = f"a {colour} {shape}"
        if jsonl:
            rows.append(json.dumps({"file_name": name, "text": caption}))
        else:
            (folder / name).with_suffix(".txt").write_text(caption)
    if jsonl:
        (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return folder


def encode(clip, prompts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        ids = clip.tokenizers[0](prompts, padding="max_length", max_length=77, truncation=True,
                                 return_tensors="pt").input_ids
        return clip.text_encoders[0](ids)[0]


def _noise(seeds: list[int], size: int) -> torch.Tensor:
    return torch.cat([torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def teacher_lcm_chain(unet, embeds: torch.Tensor, uncond: torch.Tensor, seeds: list[int], steps: int = 4,
                      guidance: float = 3.0, ode_steps: int = 25, original_steps: int = 50) -> torch.Tensor:
    """What a perfect student gives under `student_lcm`: the same `LCMScheduler` chain (same
    starting noise, same re-injected noise), with each consistency-function call replaced by
    the teacher's `ode_steps`-step DDIM CFG solve from that timestep to 0.

    The LCM sampler re-noises between steps with fresh noise, so after the first step its
    output is no longer a function of the seed's teacher trajectory: this, not one
    plain teacher sample from the seed, is the like-with-like reference for a multi-step student."""
    from diffusers import DDPMScheduler, LCMScheduler

    alphas = DDPMScheduler.from_config(SD_SCHEDULER).alphas_cumprod
    context = torch.cat([embeds, uncond.expand_as(embeds)])

    def solve(x: torch.Tensor, start: int) -> torch.Tensor:
        ts = torch.linspace(start, 0, ode_steps + 1).round().long()
        for t, prev in zip(ts[:-1], ts[1:]):
            cond_out, uncond_out = unet(torch.cat([x, x]), t, encoder_hidden_states=context).sample.chunk(2)
            eps = uncond_out + guidance * (cond_out - uncond_out)
            x0 = (x - (1 - alphas[t]).sqrt() * eps) / alphas[t].sqrt()
            x = alphas[prev].sqrt() * x0 + (1 - alphas[prev]).sqrt() * eps
        return x0

    sched = LCMScheduler.from_config(SD_SCHEDULER, original_inference_steps=original_steps)
    sched.set_timesteps(steps)
    generator = torch.Generator().manual_seed(1234)
    x = _noise(seeds, unet.config.sample_size)
    for i, t in enumerate(sched.timesteps):
        denoised = solve(x, int(t))
        if i + 1 < len(sched.timesteps):
            prev = sched.timesteps[i + 1]
            noise = torch.randn(x.shape, generator=generator)
            x = alphas[prev].sqrt() * denoised + (1 - alphas[prev]).sqrt() * noise
    return denoised


@torch.no_grad()
def student_lcm(unet, embeds: torch.Tensor, seeds: list[int], steps: int = 4,
                original_steps: int = 50) -> torch.Tensor:
    """The student's `steps`-step LCM sample without CFG (diffusers' `LCMScheduler`)."""
    from diffusers import LCMScheduler

    sched = LCMScheduler.from_config(SD_SCHEDULER, original_inference_steps=original_steps)
    sched.set_timesteps(steps)
    x = _noise(seeds, unet.config.sample_size)
    generator = torch.Generator().manual_seed(1234)
    denoised = x
    for t in sched.timesteps:
        out = unet(x, t, encoder_hidden_states=embeds).sample
        x, denoised = sched.step(out, t, x, generator=generator, return_dict=False)
    return denoised


def pretrain_teacher(model, clip, vae, dataset: Path, steps: int = 150, lr: float = 2e-3, seed: int = 0):
    """Fit the tiny UNet (in place) as an ε-predictor on `dataset` so that it is a teacher
    with a meaningful probability-flow ODE; plain DDPM training, a few seconds."""
    from diffusers import DDPMScheduler

    from lcm_core.training.dataset import encode_images, load_pixels, scan_dataset

    examples = scan_dataset(dataset, 32)
    posterior = torch.cat([encode_images(vae.vae, load_pixels(e.path, 32)[None]) for e in examples])
    latents = posterior[:, :4] * vae.scaling_factor
    embeds = encode(clip, [e.caption for e in examples])
    uncond = encode(clip, [""])
    sched = DDPMScheduler.from_config(SD_SCHEDULER)
    g = torch.Generator().manual_seed(seed)
    unet = model.unet
    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr)
    for _ in range(steps):
        noise = torch.randn(latents.shape, generator=g)
        t = torch.randint(0, 1000, (len(latents),), generator=g)
        drop = torch.rand(len(latents), generator=g) < 0.2
        cond = torch.where(drop[:, None, None], uncond.expand_as(embeds), embeds)
        loss = torch.nn.functional.mse_loss(unet(sched.add_noise(latents, noise, t), t, cond).sample, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
    unet.eval().requires_grad_(False)
    return model


def configure_folders(tmp: Path):
    """Point `lcm_core.paths` at fresh models/input/output folders under `tmp`."""
    from lcm_core import paths

    dirs = {k: tmp / k for k in ("models", "input", "output", "temp")}
    paths.configure(paths.LocalFolders(dirs["models"], dirs["input"], dirs["output"], dirs["temp"]))
    return dirs


@contextlib.contextmanager
def training_folders(tmp: Path, images: int):
    """Folders under `tmp` with a dataset of `images` in `input/ds`, on one torch thread
    (bitwise-repeatable and fast on a shared machine); everything restored afterwards."""
    from lcm_core import paths

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dirs = configure_folders(tmp)
        write_dataset(dirs["input"] / "ds", images)
        yield dirs
    finally:
        paths.configure(None)
        torch.set_num_threads(threads)


class StopAfter:
    """A progress reporter that records steps and asks to stop once `k` steps are done."""

    def __init__(self, k: int | None = None):
        self.k = k
        self.steps = []

    def step(self, step) -> None:
        self.steps.append(step)

    def interrupted(self) -> bool:
        return self.k is not None and len(self.steps) >= self.k
