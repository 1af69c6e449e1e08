"""Apply LoRA (LCM): LoRA files as patches on LCM_MODEL / LCM_CLIP handles."""

from __future__ import annotations

from . import host
from ._engine import engine

LORA_KINDS = ["auto", "lcm", "tcd", "hyper-sd", "pcm", "dmd2", "style"]


class LCMLoraLoader:
    """Returns new handles carrying the LoRA; the inputs stay unpatched for other branches."""

    @classmethod
    def INPUT_TYPES(cls):
        loras = engine("paths").list_files("loras", (".safetensors",))
        strength = {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}
        return {
            "required": {
                "model": ("LCM_MODEL", {"tooltip": "The model to apply the LoRA to (it is not changed)."}),
                "lora_name": (loras, {"tooltip": "A .safetensors LoRA from the loras folder: diffusers/PEFT, "
                                                 "kohya, ComfyUI, LoCon, LoHa or LoKr."}),
                "strength_model": ("FLOAT", {**strength, "tooltip": "How strongly to patch the UNet; "
                                                                    "negative values subtract the LoRA."}),
            },
            "optional": {
                "clip": ("LCM_CLIP", {"tooltip": "The text encoder(s) to patch; leave empty for UNet-only "
                                                 "LoRAs such as LCM-LoRA."}),
                "strength_clip": ("FLOAT", {**strength, "tooltip": "How strongly to patch the text encoder(s); "
                                                                   "0 leaves them as they are."}),
                "lora_kind": (LORA_KINDS, {"default": "auto",
                                           "tooltip": "What the LoRA is. auto reads it from the file name and "
                                                      "metadata; lcm/tcd/hyper-sd/pcm/dmd2 make sampling pick "
                                                      "that method's defaults; style marks a plain LoRA."}),
            },
        }

    RETURN_TYPES = ("LCM_MODEL", "LCM_CLIP")
    RETURN_NAMES = ("model", "clip")
    OUTPUT_TOOLTIPS = ("The model with the LoRA applied (a new handle sharing the base weights).",
                       "The text encoder(s) with the LoRA applied, or nothing when no clip was given.")
    FUNCTION = "apply_lora"
    CATEGORY = "LCM/loaders"
    DESCRIPTION = ("Apply a LoRA (an LCM-LoRA for few-step sampling, or a style LoRA) to an LCM model and, "
                   "optionally, its text encoder. LoRAs stack: chain several of these nodes.")

    def apply_lora(self, model, lora_name, strength_model, clip=None, strength_clip=1.0, lora_kind="auto"):
        path = engine("paths").resolve("loras", lora_name, input_name="lora_name")
        return host.run(engine("lora").apply_lora, model, clip, path, strength_model, strength_clip, lora_kind)


NODE_CLASS_MAPPINGS = {"LCMLoraLoader": LCMLoraLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMLoraLoader": "Apply LoRA (LCM)"}
