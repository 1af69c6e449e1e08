"""The saved LoRA files reproduce the trained student: diffusers' `load_lora_weights` on
the kohya file (the layout ComfyUI's LoraLoader reads) and on the PEFT file gives the
student's outputs, and our LoRA loader agrees with diffusers on the kohya file."""

from __future__ import annotations

import pytest
import torch

from lcm_core.training import TrainingConfig, train_lcd
from support.training_models import tiny_handles, training_folders


@pytest.fixture
def trained(tmp_path):
    with training_folders(tmp_path, 2) as dirs:
        yield dirs, _train(dirs)


def _train(dirs):
    config = TrainingConfig(dataset_dir=str(dirs["input"] / "ds"), steps=4, resolution=32, batch_size=2,
                            lora_rank=4, lora_alpha=2.0, learning_rate=5e-3, save_name="files", checkpoint_every=0)
    return train_lcd(*tiny_handles(), config)


def _pipeline():
    from diffusers import LCMScheduler, StableDiffusionPipeline

    from support.training_models import SD_SCHEDULER

    model, clip, vae = tiny_handles()
    return StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.text_encoders[0], tokenizer=clip.tokenizers[0],
                                   unet=model.unet, scheduler=LCMScheduler.from_config(SD_SCHEDULER),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@pytest.mark.parametrize("layout", ["kohya", "peft"])
def test_diffusers_loads_the_saved_lora_and_matches_the_student(trained, layout):
    dirs, result = trained
    path = (dirs["models"] / "loras" / "files.safetensors" if layout == "kohya"
            else dirs["output"] / "lcm_training" / "files" / "files.peft.safetensors")
    pipe = _pipeline()
    x = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([999, 259])
    e = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = pipe.unet(x, t, encoder_hidden_states=e).sample
        pipe.load_lora_weights(str(path), adapter_name="trained")
        loaded = pipe.unet(x, t, encoder_hidden_states=e).sample
        with result.model.materialized() as unet:
            student = unet(x, t, encoder_hidden_states=e).sample
    assert (student - base).abs().max() > 1e-3, "the LoRA changes the output"
    torch.testing.assert_close(loaded, student, atol=1e-5, rtol=1e-4)


def test_our_lora_loader_matches_diffusers_on_the_kohya_file(trained):
    from lcm_core.lora import apply

    dirs, _ = trained
    path = dirs["models"] / "loras" / "files.safetensors"
    model, clip, _ = tiny_handles()
    patched, _ = apply.apply_lora(model, clip, path, 1.0, 0.0)
    pipe = _pipeline()
    pipe.load_lora_weights(str(path), adapter_name="trained")
    x = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([759, 19])
    e = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), patched.materialized() as unet:
        ours = unet(x, t, encoder_hidden_states=e).sample
        reference = pipe.unet(x, t, encoder_hidden_states=e).sample
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
