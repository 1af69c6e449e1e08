"""LoRA files: read any common layout, map onto our diffusers modules, apply as patches
on shared bases (`apply_lora`), and write LoRAs in kohya or PEFT layout (`save_lora`)."""

from .apply import apply_lora, match_lora
from .formats import LoraFile, parse_lora, read_lora
from .patching import WeightPatch, patched_module, patched_modules

__all__ = ["apply_lora", "match_lora", "LoraFile", "parse_lora", "read_lora", "WeightPatch",
           "patched_module", "patched_modules", "save_lora"]


def __getattr__(name: str):
    if name == "save_lora":
        from .save import save_lora

        return save_lora
    raise AttributeError(name)
