"""The shapes demo family's architectures and its diffusers-folder layout.

A small SD1.x-layout text-to-image model for the 64×64 shapes images: an AutoencoderKL
with 4 latent channels and SD's ×8 downsampling (8×8 latents), a 3-layer CLIP text
encoder over a word-level CLIP BPE vocabulary of the captions' grammar, and a UNet with
cross-attention, trained as an epsilon-prediction model on SD's noise schedule (`sd`, what
ships) or as a v-prediction model on that schedule rescaled to zero terminal SNR
(`zero-snr`, Lin et al., arXiv:2305.08891: on 8×8 latents the 0.068 of signal SD's
schedule leaves at t = 999 lets the UNet read the layout from the noise and ignore the
prompt's position). Saved as a `StableDiffusionPipeline` folder, which our loader (and
diffusers) read as SD1.x; its scheduler config carries the schedule.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..text.build_vocab import bytes_to_unicode
from .shapes import COLOURS, POSITIONS, SHAPES

TEACHER_NAME = "shapes_sd_demo"
LCM_LORA_NAME = "shapes_lcm_lora.safetensors"
STRIPED_LORA_NAME = "shapes_lcf_striped.safetensors"
TEXT_WIDTH = 128

VAE_CONFIG = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "sample_size": 64, "layers_per_block": 1,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [16, 32, 64, 64], "norm_num_groups": 8,
}
UNET_CONFIG = {
    "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
    "block_out_channels": [48, 96, 96], "norm_num_groups": 16, "cross_attention_dim": TEXT_WIDTH,
    "attention_head_dim": 8,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
_SD_SCHEDULE = {
    "_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "clip_sample": False,
    "set_alpha_to_one": False, "steps_offset": 1,
}
SCHEDULES = {
    "sd": _SD_SCHEDULE,
    "zero-snr": {**_SD_SCHEDULE, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True,
                 "timestep_spacing": "trailing"},
}


def caption_words() -> list[str]:
    """Every word the shapes captions use (the comma is its own word, as CLIP splits it)."""
    words = {"a", "an", "on", "background", "striped", ","} | set(COLOURS) | set(SHAPES)
    for position in POSITIONS:
        words.update(position.split())
    return sorted(words)


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE of one word: merge the lowest-ranked adjacent pair until none applies."""
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), len(ranks)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of a CLIP BPE tokenizer in which every caption word is one token:
    the 512 byte tokens, merges that join each word's pieces left to right (added until
    BPE leaves every word whole), and the specials last (as in CLIP, `<|endoftext|>` has
    the largest id). Other text still tokenizes, byte-wise."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in caption_words():
        parts = _bpe(word, ranks)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            tokens.append(pair[0] + pair[1])
            parts = _bpe(word, ranks)
    tokens = list(dict.fromkeys(tokens)) + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_tokenizer():
    """The family's `CLIPTokenizer` (SD1.x padding: `<|endoftext|>`, 77 tokens)."""
    from transformers import CLIPTokenizer

    vocab, merges = vocabulary()
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>", model_max_length=77)


def build_text_encoder(tokenizer):
    """A randomly initialised 3-layer CLIP text encoder of width 128 for `tokenizer`."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
                            num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=77,
                            projection_dim=TEXT_WIDTH, hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return CLIPTextModel(config)


def build_vae():
    """A randomly initialised AutoencoderKL of `VAE_CONFIG`."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def build_unet():
    """A randomly initialised UNet2DConditionModel of `UNET_CONFIG`."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNET_CONFIG)


def save_family(folder: str | Path, vae, tokenizer, text_encoder, unet, schedule: str = "sd") -> Path:
    """Write a `StableDiffusionPipeline` folder (fp32 safetensors) with the scheduler
    config of `SCHEDULES[schedule]` and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(folder / "vae")
    tokenizer.save_pretrained(folder / "tokenizer")
    text_encoder.save_pretrained(folder / "text_encoder")
    unet.save_pretrained(folder / "unet")
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULES[schedule], indent=2) + "\n",
                                                                encoding="utf-8")
    index = {"_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "DDIMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return folder
