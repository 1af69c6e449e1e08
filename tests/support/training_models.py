"""Tiny SD1.5-shaped models with random weights, wrapped in handles, and small captioned
image folders: what the training tests train on (32 px images, 4x4 latents)."""

from __future__ import annotations

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
