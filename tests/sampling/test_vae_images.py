"""IMAGE and LATENT conventions: our VAE nodes' tensors are ComfyUI's, both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from lcm_core.errors import FamilyMismatchError, InputError
from lcm_core.images import decode, encode
from lcm_core.sampling import SamplingOptions, sample
from support.tiny_models import conditioning, model_handle, random_image, tiny_unet, tiny_vae, vae_handle, zero_latent


@pytest.fixture(scope="module")
def vae():
    return vae_handle(tiny_vae(seed=3))


def native_save_image(images, path):
    """ComfyUI's SaveImage, minus metadata: `255. * i.cpu().numpy()` → clip → uint8 → PNG."""
    for n, image in enumerate(images):
        i = 255.0 * image.cpu().numpy()
        Image.fromarray(np.clip(i, 0, 255).astype(np.uint8)).save(path / f"out_{n:05}_.png")


def native_vae_decode(vae_module, samples):
    """ComfyUI's VAE.decode on a raw latent: decoder output (x + 1) / 2 clamped, channels last."""
    pixels = vae_module.decode(samples, return_dict=False)[0]
    return torch.clamp((pixels + 1.0) / 2.0, min=0.0, max=1.0).movedim(1, -1)


def test_decoded_image_follows_comfyui_image_convention_and_saves(vae, tmp_path):
    model = model_handle(tiny_unet(lcm=True, seed=1))
    out = sample(model, conditioning(), zero_latent(batch=2, height=64, width=96), SamplingOptions(guidance_scale=8.0))
    image = decode(vae, out)
    assert image.shape == (2, 64, 96, 3) and image.dtype == torch.float32 and image.device.type == "cpu"
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.is_contiguous()
    native_save_image(image, tmp_path)
    saved = [np.asarray(Image.open(tmp_path / f"out_{n:05}_.png")) for n in range(2)]
    assert saved[0].shape == (64, 96, 3) and saved[0].dtype == np.uint8
    assert np.abs(saved[1].astype(float) - image[1].numpy() * 255).max() <= 1.0
    with torch.no_grad():
        native = native_vae_decode(vae.vae, out["samples"])
    assert (native - image).abs().max() <= 1e-6, "ComfyUI's VAE Decode reads our LATENT the same"


def test_encode_is_the_vae_posterior_mean_of_the_normalised_image(vae):
    image = random_image(batch=2, seed=5)
    latent = encode(vae, image)
    processor = VaeImageProcessor(vae_scale_factor=8)
    pixels = processor.preprocess(image.permute(0, 3, 1, 2))
    with torch.no_grad():
        expected = vae.vae.encode(pixels).latent_dist.mode()
    assert latent["samples"].shape == (2, 4, 8, 8)
    assert torch.allclose(latent["samples"], expected, atol=1e-6)
    assert torch.equal(encode(vae, image)["samples"], latent["samples"]), "encode is deterministic"
    rgba = torch.cat([image, torch.ones(2, 64, 64, 1)], dim=-1)
    assert torch.equal(encode(vae, rgba)["samples"], latent["samples"]), "alpha is dropped, as ComfyUI does"


@pytest.mark.parametrize("height, width", [(60, 64), (64, 100)])
def test_encode_refuses_sizes_not_multiple_of_8_with_the_fix(vae, height, width):
    with pytest.raises(InputError) as err:
        encode(vae, random_image(height=height, width=width))
    assert err.value.input_name == "pixels"
    assert f"{round(width / 8) * 8}x{round(height / 8) * 8}" in err.value.details


def test_decode_refuses_a_latent_of_another_shape(vae):
    with pytest.raises(FamilyMismatchError):
        decode(vae, {"samples": torch.zeros(1, 16, 8, 8)})
    with pytest.raises(InputError):
        decode(vae, torch.zeros(1, 4, 8, 8))
