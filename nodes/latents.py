"""LCM VAE Decode / Encode: LATENT ↔ IMAGE with the model's VAE, in ComfyUI's conventions."""

from __future__ import annotations

from . import host
from ._engine import engine


class LCMVAEDecode:
    """Decode a LATENT (ours or ComfyUI's) to an IMAGE."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LCM_VAE", {"tooltip": "The VAE loaded with the model."}),
                "samples": ("LATENT", {"tooltip": "The latent to decode, e.g. LCM Sampler's output."}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The decoded images, [batch, height, width, 3] in 0..1.",)
    FUNCTION = "decode"
    CATEGORY = "LCM/latent"
    DESCRIPTION = "Decode latents to images with the LCM checkpoint's VAE."

    def decode(self, vae, samples):
        return (host.run(engine("images").decode, vae, samples),)


class LCMVAEEncode:
    """Encode an IMAGE to a LATENT for img2img."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LCM_VAE", {"tooltip": "The VAE loaded with the model."}),
                "pixels": ("IMAGE", {"tooltip": "The image to start from; width and height must be multiples "
                                                "of 8."}),
            }
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The image's latent (raw VAE scale), for LCM Sampler with denoise below 1.0.",)
    FUNCTION = "encode"
    CATEGORY = "LCM/latent"
    DESCRIPTION = "Encode images to latents with the LCM checkpoint's VAE, for img2img."

    def encode(self, vae, pixels):
        return (host.run(engine("images").encode, vae, pixels),)


NODE_CLASS_MAPPINGS = {"LCMVAEDecode": LCMVAEDecode, "LCMVAEEncode": LCMVAEEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMVAEDecode": "LCM VAE Decode", "LCMVAEEncode": "LCM VAE Encode"}
