"""Conditioning: encode a prompt into `LCM_CONDITIONING`."""

from __future__ import annotations

from . import host
from ._engine import engine


class LCMTextEncode:
    """ComfyUI's CLIPTextEncode for LCM models: same prompt syntax, same chunking."""

    DESCRIPTION = (
        "Encodes a prompt with the model's text encoder(s) for the LCM Sampler. Uses ComfyUI's "
        "prompt syntax: (words) weights them ×1.1 (nest for more), (words:1.3) sets the weight, "
        "\\( and \\) are literal parentheses. Prompts longer than 75 tokens are encoded in "
        "77-token chunks and joined, as ComfyUI does."
    )
    CATEGORY = "LCM/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("LCM_CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("The encoded prompt (plus SDXL's pooled embedding), for the LCM Sampler's "
                       "positive or negative input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip": ("LCM_CLIP", {"tooltip": "Text encoder(s) from Load LCM Checkpoint or Apply LoRA (LCM)."}),
                "text": ("STRING", {"multiline": True, "dynamicPrompts": True,
                                    "tooltip": "The prompt. (word:1.2) weights words; may be empty "
                                               "(e.g. for a negative prompt)."}),
            }
        }

    def encode(self, clip, text):
        return (host.run(engine("text.encode").encode_text, clip, text),)


NODE_CLASS_MAPPINGS = {"LCMTextEncode": LCMTextEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMTextEncode": "LCM Text Encode"}
