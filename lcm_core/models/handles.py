"""The objects that flow between nodes: `LCM_MODEL`, `LCM_CLIP`, `LCM_VAE`.

Handles are immutable: applying a LoRA returns a new handle that shares the base
modules and records its patches; the base weights only change inside
`materialized()`, which restores them on exit. Two handles on one base therefore never
see each other's patches.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

FAMILIES = ("sd15", "sd2", "sd2-v", "sdxl")
FAMILY_NAMES = {"sd15": "SD1.5", "sd2": "SD2.x", "sd2-v": "SD2.x (v-prediction)", "sdxl": "SDXL"}


@dataclass(frozen=True, eq=False)
class LCMModel:
    """A denoiser: the diffusers UNet plus what sampling needs to know about it.

    `method` names the few-step method the weights follow: `lcm` for an LCM-distilled
    UNet, `lcm-lora`/`tcd`/`hyper-sd`/`pcm`/`dmd2` when a LoRA of that kind is applied,
    `none` for a plain SD model.
    """

    unet: Any
    family: str
    prediction_type: str
    scheduler_config: dict
    lcm_distilled: bool = False
    method: str = "none"
    patches: tuple = ()
    source: str = ""
    extra: dict = field(default_factory=dict)

    def replace(self, **changes: Any) -> "LCMModel":
        """A new handle with `changes`; the UNet stays shared."""
        return dataclasses.replace(self, **changes)

    @contextlib.contextmanager
    def materialized(self) -> Iterator[Any]:
        """The UNet with this handle's patches applied, for the duration of the block."""
        if self.patches:
            from ..lora.patching import patched_module

            with patched_module(self.unet, self.patches) as unet:
                yield unet
        else:
            yield self.unet


@dataclass(frozen=True, eq=False)
class LCMClip:
    """Tokenizers and text encoders (one pair for SD1.x/SD2.x, two for SDXL)."""

    tokenizers: tuple
    text_encoders: tuple
    family: str
    patches: tuple = ()
    source: str = ""

    def replace(self, **changes: Any) -> "LCMClip":
        """A new handle with `changes`; the encoders stay shared."""
        return dataclasses.replace(self, **changes)

    @contextlib.contextmanager
    def materialized(self) -> Iterator[tuple]:
        """The text encoders with this handle's patches applied, for the block."""
        if self.patches:
            from ..lora.patching import patched_modules

            with patched_modules(self.text_encoders, self.patches) as encoders:
                yield encoders
        else:
            yield self.text_encoders


@dataclass(frozen=True, eq=False)
class LCMVae:
    """The AutoencoderKL; latents outside it are raw (unscaled), as in ComfyUI."""

    vae: Any
    family: str
    scaling_factor: float
    shift_factor: float = 0.0
    source: str = ""
