"""Cheap stand-ins for the pack's nodes, with the real class_types and input names
(DESIGN.md's table) and ComfyUI's node protocol, so graph tests need no model.

Every `FUNCTION` call is counted in `CALLS[class_type]` (reset it per test). The
"sampler" is deterministic in its seed and reports progress / checks interruption
each step through `lcm_core.progress`, like the real one.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import torch

from lcm_core import progress

CALLS: Counter = Counter()
CHECKPOINTS = ["tiny-lcm.safetensors", "tiny-sd15.safetensors"]
LORAS = ["lcm-lora.safetensors", "style.safetensors"]


def _tooltip(text: str, **opts) -> dict:
    return {"tooltip": text, **opts}


def _text_vector(text: str) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return torch.randn(8, generator=torch.Generator().manual_seed(seed))


class LCMCheckpointLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (CHECKPOINTS, _tooltip("checkpoint")),
                             "dtype": (["auto", "fp16", "bf16", "fp32"], _tooltip("dtype", default="auto"))},
                "optional": {"base_ckpt_name": (["none"] + CHECKPOINTS, _tooltip("base", default="none"))}}

    RETURN_TYPES = ("LCM_MODEL", "LCM_CLIP", "LCM_VAE")
    RETURN_NAMES = ("model", "clip", "vae")
    FUNCTION = "load"
    CATEGORY = "LCM/loaders"
    DESCRIPTION = "dummy loader"

    def load(self, ckpt_name, dtype, base_ckpt_name="none"):
        CALLS["LCMCheckpointLoader"] += 1
        scale = 1.0 + CHECKPOINTS.index(ckpt_name)
        return ({"scale": scale, "loras": ()}, {"name": ckpt_name, "loras": ()}, {"gain": 0.5})


class LCMLoraLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("LCM_MODEL", _tooltip("model")),
                             "lora_name": (LORAS, _tooltip("lora")),
                             "strength_model": ("FLOAT", _tooltip("s", default=1.0, min=-10.0, max=10.0, step=0.01))},
                "optional": {"clip": ("LCM_CLIP", _tooltip("clip")),
                             "strength_clip": ("FLOAT", _tooltip("s", default=1.0, min=-10.0, max=10.0, step=0.01)),
                             "lora_kind": (["auto", "lcm", "style"], _tooltip("kind", default="auto"))}}

    RETURN_TYPES = ("LCM_MODEL", "LCM_CLIP")
    RETURN_NAMES = ("model", "clip")
    FUNCTION = "apply"
    CATEGORY = "LCM/loaders"
    DESCRIPTION = "dummy lora"

    def apply(self, model, lora_name, strength_model, clip=None, strength_clip=1.0, lora_kind="auto"):
        CALLS["LCMLoraLoader"] += 1
        model = {**model, "loras": model["loras"] + ((lora_name, strength_model),)}
        clip = None if clip is None else {**clip, "loras": clip["loras"] + ((lora_name, strength_clip),)}
        return (model, clip)


class LCMTextEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("LCM_CLIP", _tooltip("clip")),
                             "text": ("STRING", _tooltip("prompt", multiline=True, dynamicPrompts=True))}}

    RETURN_TYPES = ("LCM_CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "LCM/conditioning"
    DESCRIPTION = "dummy encode"

    def encode(self, clip, text):
        CALLS["LCMTextEncode"] += 1
        return (_text_vector(clip["name"] + repr(clip["loras"]) + text),)


class LCMSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("LCM_MODEL", _tooltip("model")),
            "positive": ("LCM_CONDITIONING", _tooltip("positive")),
            "latent_image": ("LATENT", _tooltip("latent")),
            "seed": ("INT", _tooltip("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF)),
            "steps": ("INT", _tooltip("steps", default=4, min=1, max=50)),
            "guidance_scale": ("FLOAT", _tooltip("cfg", default=1.0, min=0.0, max=30.0, step=0.1)),
            "denoise": ("FLOAT", _tooltip("denoise", default=1.0, min=0.0, max=1.0, step=0.01)),
            "sampler_name": (["lcm", "tcd"], _tooltip("sampler", default="lcm")),
        }, "optional": {
            "negative": ("LCM_CONDITIONING", _tooltip("negative")),
            "original_inference_steps": ("INT", _tooltip("ois", default=50, min=1, max=1000)),
            "tcd_gamma": ("FLOAT", _tooltip("gamma", default=0.3, min=0.0, max=1.0, step=0.01)),
            "timesteps": ("STRING", _tooltip("timesteps", default="")),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "LCM/sampling"
    DESCRIPTION = "dummy sampler"

    def sample(self, model, positive, latent_image, seed, steps, guidance_scale, denoise, sampler_name,
               negative=None, original_inference_steps=50, tcd_gamma=0.3, timesteps=""):
        CALLS["LCMSampler"] += 1
        base = latent_image["samples"]
        x = torch.randn(base.shape, generator=torch.Generator().manual_seed(seed % 2**63))
        for i in range(steps):
            progress.check_interrupt()
            x = 0.5 * x + 0.1 * model["scale"] * positive.mean() + (1 - denoise) * base
            progress.report(i + 1, steps, x=x)
        return ({"samples": x * guidance_scale / max(guidance_scale, 1.0)},)


class LCMVAEDecode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("LCM_VAE", _tooltip("vae")), "samples": ("LATENT", _tooltip("latent"))}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "LCM/latent"
    DESCRIPTION = "dummy decode"

    def decode(self, vae, samples):
        CALLS["LCMVAEDecode"] += 1
        latent = samples["samples"]
        image = torch.sigmoid(vae["gain"] * latent[:, :3]).permute(0, 2, 3, 1)
        return (image.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2).contiguous(),)


class LCMVAEEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("LCM_VAE", _tooltip("vae")), "pixels": ("IMAGE", _tooltip("image"))}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"
    CATEGORY = "LCM/latent"
    DESCRIPTION = "dummy encode"

    def encode(self, vae, pixels):
        CALLS["LCMVAEEncode"] += 1
        small = pixels[:, ::8, ::8, :].permute(0, 3, 1, 2)
        return ({"samples": torch.cat([small, small[:, :1]], dim=1) / vae["gain"]},)


class FailingNode:
    """Raises when run (execution_error tests)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT", _tooltip("latent"))}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "fail"
    CATEGORY = "LCM/test"
    DESCRIPTION = "always fails"

    def fail(self, samples):
        CALLS["FailingNode"] += 1
        raise RuntimeError("dummy failure")


class ChoiceNode:
    """Has VALIDATE_INPUTS (takes over the combo check) and IS_CHANGED."""

    VERSION = {"value": 0}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": (["a", "b"], _tooltip("name")),
                             "latent": ("LATENT", _tooltip("latent"))}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "pick"
    CATEGORY = "LCM/test"
    DESCRIPTION = "validates itself"

    @classmethod
    def VALIDATE_INPUTS(cls, name):
        return True if name in ("a", "b", "c") else f"unknown name {name}"

    @classmethod
    def IS_CHANGED(cls, name):
        return cls.VERSION["value"]

    def pick(self, name, latent):
        CALLS["ChoiceNode"] += 1
        return (latent,)


class IntConstant:
    """An INT output, to feed a widget converted to an input."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", _tooltip("value", default=0, min=0, max=100))}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "get"
    CATEGORY = "LCM/test"
    DESCRIPTION = "an int"

    def get(self, value):
        CALLS["IntConstant"] += 1
        return (value,)


NODE_CLASS_MAPPINGS = {
    cls.__name__: cls for cls in (LCMCheckpointLoader, LCMLoraLoader, LCMTextEncode, LCMSampler, LCMVAEDecode,
                                  LCMVAEEncode, FailingNode, ChoiceNode, IntConstant)
}


def all_nodes() -> dict[str, type]:
    """Dummy pack nodes plus the real headless io nodes (LoadImage, SaveImage, ...)."""
    from lcm_core.graph.registry import node_package

    io_nodes = {k: v for k, v in node_package().NODE_CLASS_MAPPINGS.items()
                if k in ("LoadImage", "SaveImage", "PreviewImage", "EmptyLatentImage")}
    return {**NODE_CLASS_MAPPINGS, **io_nodes}


def txt2img_prompt(seed: int = 1, text: str = "a cat", steps: int = 2) -> dict:
    """API prompt: loader → encode → empty latent → sampler → decode → save."""
    return {
        "1": {"class_type": "LCMCheckpointLoader", "inputs": {"ckpt_name": CHECKPOINTS[0], "dtype": "auto"}},
        "2": {"class_type": "LCMTextEncode", "inputs": {"clip": ["1", 1], "text": text}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "LCMSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "latent_image": ["3", 0], "seed": seed, "steps": steps,
            "guidance_scale": 1.0, "denoise": 1.0, "sampler_name": "lcm"}},
        "5": {"class_type": "LCMVAEDecode", "inputs": {"vae": ["1", 2], "samples": ["4", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "test"}},
    }

NODE_DISPLAY_NAME_MAPPINGS = {
    "LCMCheckpointLoader": "Load LCM Checkpoint", "LCMLoraLoader": "Apply LoRA (LCM)",
    "LCMTextEncode": "LCM Text Encode", "LCMSampler": "LCM Sampler", "LCMVAEDecode": "LCM VAE Decode",
    "LCMVAEEncode": "LCM VAE Encode", "LoadImage": "Load Image", "SaveImage": "Save Image",
    "PreviewImage": "Preview Image", "EmptyLatentImage": "Empty Latent Image",
}
