"""`LCM_CONDITIONING`: encoded prompts, as diffusers' pipelines take them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class LCMConditioning:
    """One encoded prompt.

    `embeds` is `prompt_embeds` as diffusers' pipelines build it (`[1, tokens, dim]`,
    tokens a multiple of 77 for long prompts); `pooled` is SDXL's pooled text embedding
    (`[1, 1280]`, None for SD1.x/SD2.x). `family` lets the sampler refuse a
    conditioning made for another model family.
    """

    embeds: Any
    family: str
    pooled: Any = None
    text: str = ""
