"""Training works: LCF and LCD losses fall, and LCD moves the student towards its
teacher's 25-step CFG result on held-out prompts and seeds.

Margins: the mean loss of the last 20% of steps is at most 80% of the first 20%'s. For LCD
the student's 1- and 2-step `LCMScheduler` samples (guidance 1, no CFG) must each end at
least 25% closer (MSE) to the reference (about 44% and 42% here). On that random-init,
150-step teacher the 4-step distance is printed, not asserted (0.033 -> 0.028 at 120 steps
but 0.038 at 200); the 4-step criterion is asserted on a real teacher instead: the shipped
shapes demo teacher (`test_lcd_on_the_shipped_demo_teacher_brings_the_4_step_student_closer`). Skipping interval k = 100 (10 DDIM timesteps) so the bootstrapped
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

from lcm_core.demo.quality import PromptSet
from lcm_core.training import TrainingConfig, train_lcd, train_lcf
from support.training_models import (encode, pretrain_teacher, student_lcm, teacher_lcm_chain, tiny_handles,
                                     training_folders)

PROMPTS = ["a red square", "a blue stripes", "a green square", "a yellow stripes"] * 2
SEEDS = [101, 102, 103, 104, 105, 106, 107, 108]
STEPS, LR = 120, 1e-3
DEMO_IMAGES, DEMO_STEPS = 128, 100


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


@pytest.mark.slow
def test_lcd_on_the_shipped_demo_teacher_brings_the_4_step_student_closer(tmp_path):
    """The 4-step criterion on a real teacher: the shipped shapes teacher (trained, not
    random), a short LCD run on its own kind of data, and 8 held-out (prompt, seed) pairs.
    The 4-step distance to the teacher's 25-step CFG chain (guidance 5 = LCM w 4, the
    trained w) must shrink by at least 20% (measured: 0.803 -> 0.587, -27%, in about 2 minutes)."""
    from lcm_core import paths
    from lcm_core.demo.family import TEACHER_NAME
    from lcm_core.demo.shapes import write_dataset as write_shapes
    from lcm_core.models.load import load_checkpoint

    with training_folders(tmp_path, 1) as dirs:
        model, clip, vae = load_checkpoint(paths.PACK_MODELS_DIR / "diffusers" / TEACHER_NAME, dtype="fp32",
                                           device="cpu")
        write_shapes(dirs["input"] / "shapes", DEMO_IMAGES, seed=5)
        prompts = [a.caption() for a in PromptSet.make(8, 1).attributes]
        embeds, uncond = encode(clip, prompts), encode(clip, [""])
        reference = teacher_lcm_chain(model.unet, embeds, uncond, SEEDS, 4, guidance=5.0)

        def distance(unet) -> float:
            return (student_lcm(unet, embeds, SEEDS, 4) - reference).pow(2).mean().item()

        before = distance(model.unet)
        config = TrainingConfig(dataset_dir=str(dirs["input"] / "shapes"), steps=DEMO_STEPS, resolution=64,
                                batch_size=16, lora_rank=8, learning_rate=1e-3, w_min=4.0, w_max=4.0,
                                save_name="demo_lcd", checkpoint_every=0)
        result = train_lcd(model, clip, vae, config)
        with result.model.materialized() as student:
            after = distance(student)
    print(f"4-step MSE to the demo teacher's CFG chain: {before:.4f} -> {after:.4f}")
    assert after < 0.8 * before, (before, after)
