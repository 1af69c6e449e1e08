"""SDXL training: the text condition is diffusers' (both encoders' penultimate states, the
pooled embedding, size ids; zeros for the unconditional side), and an LCM-LoRA distilled
from a tiny SDXL teacher loads in diffusers' SDXL pipeline with our outputs."""

from __future__ import annotations

import pytest
import torch

from lcm_core.models.load import load_checkpoint
from lcm_core.training import TrainingConfig, train_lcd, train_lcf
from lcm_core.training.dataset import EncodedDataset, Example, scan_dataset, size_ids
from support.training_models import training_folders


@pytest.fixture
def sdxl(tiny_diffusers_folder):
    path, _ = tiny_diffusers_folder("sdxl")
    return path


def _pipeline(path):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(path, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _config(dirs, name: str, **kw) -> TrainingConfig:
    base = dict(dataset_dir=str(dirs["input"] / "ds"), steps=3, resolution=32, batch_size=2, lora_rank=4,
                learning_rate=5e-3, seed=1, save_name=name, checkpoint_every=0)
    return TrainingConfig(**{**base, **kw})


def test_size_ids_are_original_size_crop_corner_and_target():
    # 48×40 at 32: resized to 38×32, the centred square starts 3 px from the left;
    # 40×64: resized to 32×51, it starts 9 px from the top.
    assert size_ids(Example(path=None, caption="", size=(48, 40)), 32) == [40, 48, 0, 3, 32, 32]
    assert size_ids(Example(path=None, caption="", size=(40, 64)), 32) == [64, 40, 9, 0, 32, 32]


def test_sdxl_text_condition_is_diffusers_encode_prompt(tmp_path, sdxl):
    model, clip, vae = load_checkpoint(sdxl, dtype="fp32", device="cpu")
    pipe = _pipeline(sdxl)
    with training_folders(tmp_path, 3) as dirs:
        examples = scan_dataset(dirs["input"] / "ds", 32)
        data = EncodedDataset(examples, 32, clip.tokenizers, clip.text_encoders, vae.vae, vae.scaling_factor,
                              cache_latents=False, family="sdxl")
    embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
        [e.caption for e in examples], device="cpu", do_classifier_free_guidance=True)
    torch.testing.assert_close(data.text.embeds, embeds.float())
    torch.testing.assert_close(data.text.pooled, pooled.float())
    assert not data.uncond.embeds.any() and not data.uncond.pooled.any()
    torch.testing.assert_close(data.uncond.embeds.expand_as(negative), negative.float())
    torch.testing.assert_close(data.uncond.pooled.expand_as(negative_pooled), negative_pooled.float())
    assert data.text.time_ids.tolist() == [size_ids(e, 32) for e in examples]


def test_sdxl_lcm_lora_from_lcd_loads_in_diffusers_with_the_same_outputs(tmp_path, sdxl):
    from lcm_core.lora.apply import apply_lora

    with training_folders(tmp_path, 4) as dirs:
        result = train_lcd(*load_checkpoint(sdxl, dtype="fp32", device="cpu"), _config(dirs, "xl_lcm"))
        path = dirs["models"] / "loras" / "xl_lcm.safetensors"
        model, clip, _ = load_checkpoint(sdxl, dtype="fp32", device="cpu")
        patched, _ = apply_lora(model, clip, path, 1.0, 0.0)
        pipe = _pipeline(sdxl)
        pipe.load_lora_weights(str(path), adapter_name="trained")
    losses = result.loss_curve
    assert losses.numel() > 0
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 4, 4, generator=gen)
    t = torch.tensor([999, 259])
    e = torch.randn(2, 77, 80, generator=gen)
    added = {"text_embeds": torch.randn(2, 48, generator=gen),
             "time_ids": torch.tensor([[32.0, 32, 0, 0, 32, 32]] * 2)}
    with torch.no_grad():
        reference = pipe.unet(x, t, encoder_hidden_states=e, added_cond_kwargs=added).sample
        with model.materialized() as base_unet:
            base = base_unet(x, t, encoder_hidden_states=e, added_cond_kwargs=added).sample
        with patched.materialized() as unet:
            ours = unet(x, t, encoder_hidden_states=e, added_cond_kwargs=added).sample
        with result.model.materialized() as unet:
            student = unet(x, t, encoder_hidden_states=e, added_cond_kwargs=added).sample
    assert (student - base).abs().max() > 1e-4, "the LoRA changes the output"
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(student, reference, atol=1e-5, rtol=1e-4)


def test_sdxl_full_unet_lcf_saves_an_sdxl_folder_our_loader_reads(tmp_path, sdxl):
    with training_folders(tmp_path, 4) as dirs:
        result = train_lcf(*load_checkpoint(sdxl, dtype="fp32", device="cpu"),
                           _config(dirs, "xl_lcf", lora_rank=0, learning_rate=1e-4))
        saved = dirs["models"] / "diffusers" / result.saved_name
        model, clip, _ = load_checkpoint(saved, dtype="fp32", device="cpu")
        original, _, _ = load_checkpoint(sdxl, dtype="fp32", device="cpu")
    assert model.family == clip.family == "sdxl" and len(clip.text_encoders) == 2
    with model.materialized() as trained, original.materialized() as base, result.model.materialized() as live:
        trained_state, base_state = trained.state_dict(), base.state_dict()
        assert any(not torch.equal(trained_state[k], base_state[k]) for k in base_state), "LCF changed the UNet"
        assert all(torch.equal(trained_state[k], v) for k, v in live.state_dict().items())
