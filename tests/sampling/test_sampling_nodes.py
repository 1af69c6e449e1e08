"""The sampling nodes as ComfyUI loads them: the public input contract, progress bar
with previews, interruption, and the same numbers as the engine."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from lcm_core.images import decode
from lcm_core.sampling import SamplingOptions, sample
from support.host import InterruptProcessingException, comfy_host
from support.tiny_models import conditioning, model_handle, random_image, tiny_unet, tiny_vae, vae_handle

SAMPLER_INPUTS = (["model", "positive", "latent_image", "seed", "steps", "guidance_scale", "denoise", "sampler_name"],
                  ["negative", "original_inference_steps", "tcd_gamma", "timesteps"])


@pytest.fixture(scope="module")
def parts():
    return {"model": model_handle(tiny_unet(lcm=True, seed=1)), "vae": vae_handle(tiny_vae(seed=3))}


def test_node_inputs_are_the_public_contract(tmp_path):
    with comfy_host(tmp_path) as (pack, _record, _dirs):
        nodes = pack.NODE_CLASS_MAPPINGS
        spec = nodes["LCMSampler"].INPUT_TYPES()
        assert (list(spec["required"]), list(spec["optional"])) == SAMPLER_INPUTS
        assert spec["required"]["seed"][0] == "INT" and spec["required"]["seed"][1]["max"] == 0xFFFFFFFFFFFFFFFF
        assert spec["required"]["sampler_name"][0] == ["lcm", "tcd"]
        assert spec["required"]["steps"][1]["default"] == 4
        assert list(nodes["LCMVAEDecode"].INPUT_TYPES()["required"]) == ["vae", "samples"]
        assert list(nodes["LCMVAEEncode"].INPUT_TYPES()["required"]) == ["vae", "pixels"]
        assert nodes["LCMSampler"].RETURN_TYPES == ("LATENT",) and nodes["LCMVAEDecode"].RETURN_TYPES == ("IMAGE",)
        assert pack.NODE_DISPLAY_NAME_MAPPINGS["LCMSampler"] == "LCM Sampler"


def test_img2img_chain_under_comfyui_reports_progress_with_previews(tmp_path, parts):
    image = random_image(seed=9)
    pos = conditioning(seed=2)
    with comfy_host(tmp_path) as (pack, record, _dirs):
        nodes = pack.NODE_CLASS_MAPPINGS
        (latent,) = nodes["LCMVAEEncode"]().encode(parts["vae"], image)
        (out,) = nodes["LCMSampler"]().sample(parts["model"], pos, latent, 5, 4, 8.0, 0.6, "lcm", timesteps="")
        (decoded,) = nodes["LCMVAEDecode"]().decode(parts["vae"], out)
    assert [(v, t) for v, t, _ in record.progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    fmt, preview, size = record.progress[-1][2]
    assert fmt == "JPEG" and isinstance(preview, Image.Image) and preview.size == (8, 8) and size == 512
    expected = sample(parts["model"], pos, latent, SamplingOptions(seed=5, steps=4, guidance_scale=8.0, denoise=0.6))
    assert torch.equal(out["samples"], expected["samples"])
    assert torch.equal(decoded, decode(parts["vae"], expected))


class _InterruptAt(list):
    """ComfyUI's progress record that presses the interrupt button after update `n`."""

    def __init__(self, record, n):
        super().__init__()
        self.record, self.n = record, n

    def append(self, item):
        super().append(item)
        if len(self) == self.n:
            self.record.interrupt = True


def test_interrupt_at_step_two_raises_comfyui_interrupt_and_writes_nothing(tmp_path, parts):
    with comfy_host(tmp_path) as (pack, record, dirs):
        record.progress = _InterruptAt(record, 2)
        nodes = pack.NODE_CLASS_MAPPINGS
        latent = {"samples": torch.zeros(1, 4, 8, 8)}
        with pytest.raises(InterruptProcessingException):
            nodes["LCMSampler"]().sample(parts["model"], conditioning(), latent, 0, 4, 8.0, 1.0, "lcm")
        assert [v for v, _, _ in record.progress] == [1, 2]
        assert not any(dirs["output"].iterdir())
