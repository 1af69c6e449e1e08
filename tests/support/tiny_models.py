"""Tiny diffusers modules with random weights, and the engine handles around them.

Shapes follow the real families where the engine looks at them (4 latent channels, a VAE
that downsamples by 8, SDXL's `text_time` added conditioning) but every width is small,
so a whole 4-step sample runs in milliseconds on a CPU. Seeds make every builder
deterministic.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from lcm_core.conditioning import LCMConditioning
from lcm_core.models.handles import LCMModel, LCMVae

SD15_TEXT_DIM = 32
SDXL_TEXT_DIM = 64
SDXL_POOLED_DIM = 32
LCM_COND_DIM = 32

SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "clip_sample": False,
    "original_inference_steps": 50,
}


def tiny_unet(family: str = "sd15", *, lcm: bool = False, seed: int = 0) -> UNet2DConditionModel:
    """A two-level UNet; `lcm=True` adds the guidance-embedding input (`time_cond_proj_dim`)."""
    torch.manual_seed(seed)
    common = dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        time_cond_proj_dim=LCM_COND_DIM if lcm else None,
    )
    if family == "sdxl":
        unet = UNet2DConditionModel(
            **common, block_out_channels=(32, 64), cross_attention_dim=SDXL_TEXT_DIM,
            attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2),
            addition_embed_type="text_time", addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=8 * 6 + SDXL_POOLED_DIM, norm_num_groups=8,
        )
    else:
        unet = UNet2DConditionModel(**common, block_out_channels=(16, 32), cross_attention_dim=SD15_TEXT_DIM,
                                    attention_head_dim=2, norm_num_groups=8)
    return unet.eval()


def tiny_vae(family: str = "sd15", seed: int = 0) -> AutoencoderKL:
    """An AutoencoderKL with four levels, so it maps H×W pixels to H/8×W/8 latents like
    SD's, with the family's scaling factor."""
    scaling_factor = 0.13025 if family == "sdxl" else 0.18215
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=4, sample_size=64, scaling_factor=scaling_factor,
    )
    return vae.eval()


def full_size_sd15(*, lcm: bool = True, seed: int = 0) -> tuple[UNet2DConditionModel, AutoencoderKL]:
    """The real SD1.5 UNet (plus LCM's `time_cond_proj_dim=256`) and VAE architectures with
    random fp32 weights (~3.8 GB): for checks that shapes and speed hold at full size."""
    from lcm_core.models.configs import component_config

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(component_config("sd15", "unet", lcm=lcm))
    return unet.eval(), AutoencoderKL.from_config(component_config("sd15", "vae")).eval()


def model_handle(unet, family: str = "sd15", *, prediction_type: str = "epsilon", method: str | None = None,
                 scheduler_config: dict | None = None) -> LCMModel:
    """An `LCMModel` around `unet`; the method defaults to `lcm` when the UNet is LCM-distilled."""
    distilled = unet.config.time_cond_proj_dim is not None
    return LCMModel(unet=unet, family=family, prediction_type=prediction_type,
                    scheduler_config=dict(scheduler_config or SCHEDULER_CONFIG), lcm_distilled=distilled,
                    method=method or ("lcm" if distilled else "lcm-lora"))


def vae_handle(vae, family: str = "sd15") -> LCMVae:
    """An `LCMVae` around `vae` with its config's scaling factor."""
    return LCMVae(vae=vae, family=family, scaling_factor=vae.config.scaling_factor)


def conditioning(family: str = "sd15", *, seed: int = 0, tokens: int = 77) -> LCMConditioning:
    """Random prompt embeddings shaped as the text encoder of `family` would give them."""
    g = torch.Generator().manual_seed(seed)
    dim = SDXL_TEXT_DIM if family == "sdxl" else SD15_TEXT_DIM
    embeds = torch.randn(1, tokens, dim, generator=g)
    pooled = torch.randn(1, SDXL_POOLED_DIM, generator=g) if family == "sdxl" else None
    return LCMConditioning(embeds=embeds, family=family, pooled=pooled, text=f"random {seed}")


def zero_latent(batch: int = 1, height: int = 64, width: int = 64) -> dict:
    """What ComfyUI's Empty Latent Image gives: zeros `[B, 4, H/8, W/8]`."""
    return {"samples": torch.zeros(batch, 4, height // 8, width // 8)}


def random_image(batch: int = 1, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    """A ComfyUI IMAGE `[B, H, W, 3]` float32 in 0..1."""
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(seed))
