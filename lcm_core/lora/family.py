"""Which model family a LoRA was made for, and which few-step method it carries.

The family guess is used to explain a LoRA that does not fit: header metadata first
(kohya's `ss_base_model_version`, `modelspec.architecture`, ours), then tell-tale
names (a second text encoder, SDXL's added-conditioning MLP, transformer depth > 1,
attention in the first down block), then the cross-attention width of full-size models.
"""

from __future__ import annotations

import re

from .formats import LoraFile

ARCH = {"sd15": "sd1", "sd2": "sd2", "sd2-v": "sd2", "sdxl": "sdxl"}
_CROSS_DIM = {768: "sd15", 1024: "sd2", 2048: "sdxl"}
_METHODS = (
    (re.compile(r"(?<![a-z])lcm(?![a-z])"), "lcm-lora"),
    (re.compile(r"(?<![a-z])tcd(?![a-z])"), "tcd"),
    (re.compile(r"hyper[-_ ]?sd"), "hyper-sd"),
    (re.compile(r"(?<![a-z])pcm(?![a-z])"), "pcm"),
    (re.compile(r"(?<![a-z])dmd2?(?![a-z])"), "dmd2"),
)
KINDS = ("auto", "lcm", "tcd", "hyper-sd", "pcm", "dmd2", "style")
_KIND_METHOD = {"lcm": "lcm-lora", "tcd": "tcd", "hyper-sd": "hyper-sd", "pcm": "pcm", "dmd2": "dmd2"}
_METADATA_TEXT = ("ss_output_name", "modelspec.title", "modelspec.description", "ss_training_comment",
                  "lcm_core.method", "name", "title")


def family_from_metadata(metadata: dict[str, str]) -> str | None:
    """The family a header names, if any."""
    if metadata.get("lcm_core.family") in ARCH:
        return metadata["lcm_core.family"]
    text = " ".join(metadata.get(k, "") for k in ("ss_base_model_version", "modelspec.architecture")).lower()
    if "xl" in text:
        return "sdxl"
    if "v2" in text or "sd_2" in text:
        return "sd2"
    if "v1" in text or "sd_1" in text:
        return "sd15"
    return None


def guess_family(lora: LoraFile) -> str | None:
    """The family a LoRA was most likely made for, or None when nothing tells."""
    meta = family_from_metadata(lora.metadata)
    if meta:
        return meta
    names = [n.replace(".", "_") for n in lora.adapters]
    if any(s in n for n in names for s in ("lora_te2_", "text_encoder_2_", "clip_g_", "add_embedding", "label_emb")):
        return "sdxl"
    if any(re.search(r"transformer_blocks_[1-9]", n) for n in names):
        return "sdxl"
    for name, adapter in lora.adapters.items():
        if re.search(r"attn2.*to_k", name.replace(".", "_")) and hasattr(adapter, "down"):
            found = _CROSS_DIM.get(int(adapter.down.shape[1]))
            if found:
                return found
    if any(s in n for n in names for s in ("down_blocks_0_attentions", "input_blocks_1_1_", "down_blocks_3_")):
        return "sd15"
    return None


def detect_method(name: str, metadata: dict[str, str], kind: str = "auto") -> str | None:
    """The few-step method a LoRA carries (`lcm-lora`, `tcd`, `hyper-sd`, `pcm`, `dmd2`),
    from the user's `kind` or else from the file name and header; None for a style LoRA."""
    if kind != "auto":
        return _KIND_METHOD.get(kind)
    text = " ".join([name] + [metadata.get(k, "") for k in _METADATA_TEXT]).lower()
    for pattern, method in _METHODS:
        if pattern.search(text):
            return method
    return None
