"""Training works: LCF and LCD losses fall, and LCD moves the student towards its
teacher's 25-step CFG result on held-out prompts and seeds.

Margins: the mean loss of the last 20% of steps is at most 80% of the first 20%'s. For LCD
the student's 1- and 2-step `LCMScheduler` samples (guidance 1, no CFG) must each end at
least 25% closer (MSE) to the reference (about 44% and 42% here). The 4-step distance is
printed, not asserted: 0.033 -> 0.028 at 120 steps but 0.038 at 200, not yet a robust
signal at this budget. Skipping interval k = 100 (10 DDIM timesteps) so the bootstrapped
targets reach far in 120 steps; the sampler uses the same `original_inference_steps`.
The reference is the same LCM chain run with the teacher's 25-step DDIM CFG solve (guidance
3 = LCM w 2, the trained w) in place of each consistency call, from the same starting and re-injected noise
(`teacher_lcm_chain`). Comparing a multi-step LCM sample with one plain 25-step teacher
sample from the seed is not like with like: the sampler re-noises with fresh noise between
steps, so even a perfect student (the teacher's own ODE solve) lands at MSE ~0.58 from it,
no closer than the untrained student (~0.60).
"""

from __future__ import annotations

import json

import pytest

from lcm_core.training import TrainingConfig, train_lcd, train_lcf
from support.training_models import (encode, pretrain_teacher, student_lcm, teacher_lcm_chain, tiny_handles,
                                     training_folders)

PROMPTS = ["a red square", "a blue stripes", "a green square", "a yellow stripes"] * 2
SEEDS = [101, 102, 103, 104, 105, 106, 107, 108]
STEPS, LR = 120, 1e-3


@pytest.fixture
def dirs(tmp_path):
    with training_folders(tmp_path, 8) as dirs:
        yield dirs


def _first_last(log_path) -> tuple[float, float]:
    losses = [e["loss"] for e in json.loads(log_path.read_text())]
    k = len(losses) // 5
    return sum(losses[:k]) / k, sum(losses[-k:]) / k


@pytest.mark.slow
def test_lcd_loss_falls_and_student_approaches_teacher(dirs):
    model, clip, vae = tiny_handles()
    pretrain_teacher(model, clip, vae, dirs["input"] / "ds", steps=150)
    embeds, uncond = encode(clip, PROMPTS), encode(clip, [""])
    ddim = 10
    reference = {n: teacher_lcm_chain(model.unet, embeds, uncond, SEEDS, n, guidance=3.0, original_steps=ddim)
                 for n in (1, 2, 4)}

    def distance(unet) -> dict[int, float]:
        return {n: (student_lcm(unet, embeds, SEEDS, n, ddim) - reference[n]).pow(2).mean().item()
                for n in (1, 2, 4)}

    before = distance(model.unet)
    config = TrainingConfig(dataset_dir=str(dirs["input"] / "ds"), steps=STEPS, resolution=32, batch_size=4,
                            lora_rank=8, learning_rate=LR, w_min=2.0, w_max=2.0, num_ddim_timesteps=ddim,
                            save_name="lcd", checkpoint_every=0)
    result = train_lcd(model, clip, vae, config)
    first, last = _first_last(result.log_path)
    assert last < 0.8 * first, (first, last)

    with result.model.materialized() as student:
        after = distance(student)
    print(f"MSE to the teacher's CFG chain, before -> after: 1-step {before[1]:.4f} -> {after[1]:.4f}; "
          f"2-step {before[2]:.4f} -> {after[2]:.4f}; 4-step {before[4]:.4f} -> {after[4]:.4f}")
    assert after[1] < 0.75 * before[1] and after[2] < 0.75 * before[2], (before, after)
    assert not any(".lora_" in n for n, _ in model.unet.named_parameters()), "the teacher handle is untouched"


@pytest.mark.slow
@pytest.mark.parametrize("rank, lcm_unet, lr", [(0, False, 1e-4), (8, True, 1e-3)])
def test_lcf_loss_falls(dirs, rank, lcm_unet, lr):
    model, clip, vae = tiny_handles(time_cond_proj_dim=32 if lcm_unet else None)
    config = TrainingConfig(dataset_dir=str(dirs["input"] / "ds"), steps=50, resolution=32, batch_size=4,
                            lora_rank=rank, learning_rate=lr, save_name="lcf", checkpoint_every=0)
    result = train_lcf(model, clip, vae, config)
    first, last = _first_last(result.log_path)
    assert last < 0.8 * first, (first, last)
    folder = "diffusers/lcf" if rank == 0 else "loras/lcf.safetensors"
    assert (dirs["models"] / folder).exists()
    assert result.model.method == ("lcm" if lcm_unet else "lcm-lora" if rank else "lcm")
