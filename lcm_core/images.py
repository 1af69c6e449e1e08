"""ComfyUI IMAGE ↔ LATENT through the VAE.

IMAGE is float32 `[B, H, W, 3]` in 0..1 on the CPU; LATENT is `{"samples": [B, 4, H/8, W/8]}`
holding the VAE's raw latent (no scaling factor), so ComfyUI's own VAE nodes and ours
read each other's outputs. Pixel maths follows diffusers' `VaeImageProcessor`.
"""

from __future__ import annotations

import contextlib

from .errors import FamilyMismatchError, InputError


def decode(vae, latent: dict):
    """The IMAGE for a LATENT (`vae` is an `LCMVae`)."""
    import torch

    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor):
        raise InputError("samples must be a LATENT: a dict with a 'samples' tensor", input_name="samples")
    channels = vae.vae.config.latent_channels
    if samples.ndim != 4 or samples.shape[1] != channels:
        raise FamilyMismatchError(f"samples has shape {list(samples.shape)}; this VAE decodes [batch, {channels}, h, w]",
                                  input_name="samples", details="Decode with the VAE of the model that made it.")
    with torch.no_grad(), _runnable(vae.vae) as (module, dtype):
        z = samples.to(device=_device(module), dtype=dtype)
        pixels = module.decode(z, return_dict=False)[0]
    image = (pixels / 2 + 0.5).clamp(0, 1)
    return image.cpu().permute(0, 2, 3, 1).float().contiguous()


def encode(vae, image) -> dict:
    """The LATENT for an IMAGE: the mean of the VAE posterior (deterministic, as
    ComfyUI's VAE Encode). Width and height must be multiples of 8."""
    import torch

    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] not in (3, 4):
        shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"pixels must be an IMAGE [batch, height, width, 3], got {shape}", input_name="pixels")
    _, height, width, _ = image.shape
    if height % 8 or width % 8:
        fix_h, fix_w = max(8, round(height / 8) * 8), max(8, round(width / 8) * 8)
        raise InputError(f"image size {width}x{height} is not a multiple of 8", input_name="pixels",
                         details=f"Resize or crop it to {fix_w}x{fix_h} (e.g. with ImageScale or ImageCrop) "
                                 "before LCM VAE Encode.")
    x = image[..., :3].permute(0, 3, 1, 2).float() * 2.0 - 1.0
    with torch.no_grad(), _runnable(vae.vae) as (module, dtype):
        latent = module.encode(x.to(device=_device(module), dtype=dtype)).latent_dist.mode()
    return {"samples": latent.float().cpu()}


@contextlib.contextmanager
def _runnable(module):
    """The VAE and the dtype to run it in: fp16 VAEs that ask for it (`force_upcast`,
    SDXL's) run in fp32, as diffusers' pipelines do, and are put back afterwards."""
    import torch

    dtype = next(module.parameters()).dtype
    if dtype == torch.float16 and getattr(module.config, "force_upcast", False):
        module.to(torch.float32)
        try:
            yield module, torch.float32
        finally:
            module.to(dtype)
    else:
        yield module, dtype


def _device(module):
    """The module's device from its first parameter (ModelMixin.device walks them all)."""
    return next(module.parameters()).device
