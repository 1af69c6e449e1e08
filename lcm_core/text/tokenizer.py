"""The CLIP BPE tokenizer, offline: vocabulary and merges ship in `data/`.

The files are OpenAI CLIP's vocabulary (built by `build_vocab.py` from the merges file in
the `open_clip_torch` wheel); every SD text encoder uses it. Families differ only in the
padding token, as in the published diffusers tokenizers and ComfyUI: SD1.x pads with
`<|endoftext|>` (49407); SD2.x and SDXL's second encoder (OpenCLIP) pad with `!` (id 0).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
MAX_LENGTH = 77
PAD_TOKENS = {"eos": "<|endoftext|>", "zero": "!"}
FAMILY_PADS = {"sd15": ("eos",), "sd2": ("zero",), "sd2-v": ("zero",), "sdxl": ("eos", "zero")}


@lru_cache(maxsize=None)
def clip_tokenizer(pad: str = "eos"):
    """transformers' `CLIPTokenizer` on the shipped files; `pad` is `eos` or `zero`.

    The returned object is shared: treat it as read-only.
    """
    from transformers import CLIPTokenizer

    if pad not in PAD_TOKENS:
        raise ValueError(f"pad must be one of {sorted(PAD_TOKENS)}, got {pad!r}")
    return CLIPTokenizer(vocab=str(DATA_DIR / "vocab.json"), merges=str(DATA_DIR / "merges.txt"),
                         pad_token=PAD_TOKENS[pad], model_max_length=MAX_LENGTH)


def family_tokenizers(family: str) -> tuple:
    """The tokenizer(s) of a family, one per text encoder, with that family's padding."""
    return tuple(clip_tokenizer(pad) for pad in FAMILY_PADS[family])
