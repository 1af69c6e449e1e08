"""Load LCM Checkpoint: a checkpoint file or diffusers folder -> LCM_MODEL, LCM_CLIP, LCM_VAE."""

from __future__ import annotations

from . import host
from ._engine import engine

NO_BASE = "none"


class LCMCheckpointLoader:
    """Loads SD1.x / SD2.x / SDXL checkpoints and LCM-distilled diffusers models (cached)."""

    @classmethod
    def INPUT_TYPES(cls):
        names = engine("models.names").checkpoint_names()
        return {
            "required": {
                "ckpt_name": (names, {"tooltip": "A .safetensors/.ckpt file from the checkpoints folder, or a "
                                                 "diffusers folder (listed by its folder name) from the diffusers "
                                                 "or checkpoints folder, such as LCM_Dreamshaper_v7."}),
                "dtype": (list(engine("devices").DTYPE_CHOICES), {
                    "default": "auto",
                    "tooltip": "Weight precision. auto: fp16 on CUDA/MPS, fp32 on CPU. bf16 saves memory on "
                               "recent GPUs; fp32 is slowest and most exact."}),
            },
            "optional": {
                "base_ckpt_name": ([NO_BASE] + names, {
                    "default": NO_BASE,
                    "tooltip": "Only for UNet-only models (a diffusers unet/ folder or a single UNet file, e.g. "
                               "an LCM UNet): the full checkpoint of the same family whose text encoders and VAE "
                               "are used with it. Ignored (none) for complete checkpoints."}),
            },
        }

    RETURN_TYPES = ("LCM_MODEL", "LCM_CLIP", "LCM_VAE")
    RETURN_NAMES = ("model", "clip", "vae")
    OUTPUT_TOOLTIPS = ("The denoising UNet with its family (sd15/sd2/sd2-v/sdxl), prediction type and whether it "
                       "is LCM-distilled.",
                       "The tokenizer(s) and text encoder(s) for LCM Text Encode.",
                       "The VAE for LCM VAE Decode / Encode.")
    FUNCTION = "load_checkpoint"
    CATEGORY = "LCM/loaders"
    DESCRIPTION = ("Load a Stable Diffusion 1.x, 2.x or SDXL checkpoint (single file in the original layout) or a "
                   "diffusers folder, detecting its family and whether its UNet is LCM-distilled. The same file "
                   "with the same options is loaded once and shared.")

    def load_checkpoint(self, ckpt_name, dtype="auto", base_ckpt_name=NO_BASE):
        base = None if base_ckpt_name in (None, "", NO_BASE) else base_ckpt_name
        return host.run(engine("models.load").load_checkpoint, ckpt_name, dtype, None, base)


NODE_CLASS_MAPPINGS = {"LCMCheckpointLoader": LCMCheckpointLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMCheckpointLoader": "Load LCM Checkpoint"}
