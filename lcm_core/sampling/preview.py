"""Cheap latent → RGB previews for the progress bar (no VAE): a linear map per family,
with the factors ComfyUI uses in `comfy/latent_formats.py`."""

from __future__ import annotations

# Rows are latent channels, columns R, G, B; they act on the scaled (model-space) latent.
_FACTORS = {
    "sd15": ([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
              [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]], None),
    "sdxl": ([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
              [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011]),
}


def latent_to_rgb(latent, family: str = "sd15"):
    """A PIL image (latent-sized, 1/8 of the picture) approximating the first image of a
    model-space latent `[B, 4, h, w]`, as the denoised estimate the sampler reports."""
    import torch
    from PIL import Image

    factors, bias = _FACTORS["sdxl" if family == "sdxl" else "sd15"]
    weight = torch.tensor(factors, dtype=torch.float32).T
    bias_t = torch.tensor(bias, dtype=torch.float32) if bias else None
    x = latent[0].detach().float().cpu().movedim(0, -1)
    rgb = torch.nn.functional.linear(x, weight, bias_t)
    pixels = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).to(torch.uint8)
    return Image.fromarray(pixels.numpy())
