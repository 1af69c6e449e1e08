"""Tiny CLIP tokenizers and text encoders (random weights) for text-encoding tests.

The tokenizer is a real byte-level `CLIPTokenizer` over a small vocabulary: every byte,
every byte ending a word, a few merges, and the two specials last (as in CLIP, where
`<|endoftext|>` is the largest id). Encoders are `CLIPTextModel` /
`CLIPTextModelWithProjection` built from tiny configs, fp32, eval mode.
"""

from __future__ import annotations

import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from lcm_core.text.build_vocab import bytes_to_unicode

MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("r", "e"), ("re", "d</w>")]


def tiny_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of the tiny tokenizer; `!` is id 0 like in CLIP."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in MERGES]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, list(MERGES)


def tiny_tokenizer(pad: str = "eos") -> CLIPTokenizer:
    """A CLIPTokenizer (max length 77) padding with `<|endoftext|>` (`eos`) or `!` (`zero`)."""
    vocab, merges = tiny_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>" if pad == "eos" else "!",
                         model_max_length=77)


def _config(hidden: int, layers: int, projection: int = 0) -> CLIPTextConfig:
    vocab, _ = tiny_vocab()
    return CLIPTextConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=layers, num_attention_heads=2, max_position_embeddings=77,
                          projection_dim=projection or hidden, hidden_act="quick_gelu",
                          bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                          pad_token_id=1)


def tiny_clip_l(hidden: int = 32, layers: int = 3, seed: int = 0) -> CLIPTextModel:
    """A CLIP-L-shaped text encoder, random weights."""
    torch.manual_seed(seed)
    return CLIPTextModel(_config(hidden, layers)).eval()


def tiny_clip_g(hidden: int = 48, layers: int = 3, projection: int = 40, seed: int = 1) -> CLIPTextModelWithProjection:
    """An OpenCLIP-bigG-shaped text encoder with its text projection, random weights."""
    torch.manual_seed(seed)
    return CLIPTextModelWithProjection(_config(hidden, layers, projection)).eval()
