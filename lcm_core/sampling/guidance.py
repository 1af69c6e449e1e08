"""The guided model call: w-embedding for LCM-distilled UNets, real CFG otherwise,
with SDXL's added conditioning. Mirrors diffusers' LCM, SD and SDXL pipelines."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import FamilyMismatchError, InputError


@dataclass(frozen=True)
class Guidance:
    """Everything the UNet takes besides the latents and the timestep, for one batch."""

    embeds: Any
    cfg_scale: float | None
    dtype: Any
    timestep_cond: Any = None
    added_cond: dict | None = None

    def predict(self, unet, latents, t):
        """The (guided) model output for `latents` at `t`, in float32."""
        import torch

        x = torch.cat([latents] * 2) if self.cfg_scale is not None else latents
        out = unet(x.to(self.dtype), t, encoder_hidden_states=self.embeds, timestep_cond=self.timestep_cond,
                   added_cond_kwargs=self.added_cond, return_dict=False)[0].float()
        if self.cfg_scale is None:
            return out
        uncond, cond = out.chunk(2)
        return uncond + self.cfg_scale * (cond - uncond)


def build_guidance(unet, positive, negative, guidance_scale: float, batch: int, height: int, width: int,
                   device, dtype) -> Guidance:
    """The guidance for `batch` images of `height`×`width` pixels, on the UNet's `device` in its `dtype`.

    LCM-distilled (the UNet has `time_cond_proj_dim`): `w = guidance_scale - 1` embedded as
    `LatentConsistencyModelPipeline` does, no CFG. Otherwise CFG when `guidance_scale > 1`
    (as `StableDiffusionPipeline` does), which needs `negative`.
    """
    import torch
    from diffusers import LatentConsistencyModelPipeline

    timestep_cond = None
    cfg = None
    if unet.config.time_cond_proj_dim is not None:
        w = torch.tensor(guidance_scale - 1).repeat(batch)
        # The embedding maths lives on the pipeline (it does not use `self`).
        timestep_cond = LatentConsistencyModelPipeline.get_guidance_scale_embedding(
            None, w, embedding_dim=unet.config.time_cond_proj_dim).to(device=device, dtype=dtype)
    elif guidance_scale > 1.0:
        if negative is None:
            raise InputError(
                f"guidance_scale {guidance_scale:g} > 1 uses classifier-free guidance, which needs a negative",
                input_name="negative",
                details="Connect an LCM Text Encode to `negative` (empty text is the usual choice), "
                        "or set guidance_scale to 1.0 to sample without CFG.")
        cfg = float(guidance_scale)
    conds = [negative, positive] if cfg is not None else [positive]
    embeds = _same_length([c.embeds for c in conds])
    embeds = torch.cat([e.to(device=device, dtype=dtype).repeat(batch, 1, 1) for e in embeds])
    added = None
    if unet.config.addition_embed_type == "text_time":
        added = _sdxl_added_cond(unet, [c.pooled for c in conds], batch, height, width, device, dtype)
    return Guidance(embeds=embeds, cfg_scale=cfg, dtype=dtype, timestep_cond=timestep_cond, added_cond=added)


def _same_length(embeds: list) -> list:
    """Prompts of different lengths (long prompts come in 77-token chunks) repeated to a
    common length, as ComfyUI does, so positive and negative can share one batch."""
    lengths = {e.shape[1] for e in embeds}
    if len(lengths) == 1:
        return embeds
    common = math.lcm(*lengths)
    if any(common // n > 8 for n in lengths):
        raise InputError(f"positive and negative have token lengths {sorted(lengths)} that do not combine",
                         input_name="negative", details="Encode both with LCM Text Encode (77-token chunks).")
    return [e.repeat(1, common // e.shape[1], 1) for e in embeds]


def _sdxl_added_cond(unet, pooled: list, batch: int, height: int, width: int, device, dtype) -> dict:
    """SDXL's `text_embeds` (pooled) and `time_ids` (original size, crop, target size)."""
    import torch

    time_ids = [height, width, 0, 0, height, width]
    expected = unet.add_embedding.linear_1.in_features
    got = unet.config.addition_time_embed_dim * len(time_ids) + pooled[0].shape[-1]
    if expected != got:
        raise FamilyMismatchError(
            f"the UNet's added conditioning takes {expected} values, SDXL base conditioning gives {got}",
            input_name="model", details="SDXL refiner-style UNets (aesthetic score) are not supported.")
    text_embeds = torch.cat([p.to(device=device, dtype=dtype).reshape(1, -1).repeat(batch, 1) for p in pooled])
    ids = torch.tensor([time_ids], dtype=dtype, device=device).repeat(text_embeds.shape[0], 1)
    return {"text_embeds": text_embeds, "time_ids": ids}
