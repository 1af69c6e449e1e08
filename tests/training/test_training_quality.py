"""Training works: LCF and LCD losses fall, and LCD moves the student towards its
teacher's 25-step CFG result on held-out prompts and seeds.

Margins: the mean loss of the last 20% of steps is at most 80% of the first 20%'s; the
student's consistency function at t=999 ends at least 15% closer (MSE) to the teacher's
25-step DDIM CFG sample from the same noise (about 30% closer is typical here).
"""

from __future__ import annotations

import json

import pytest
import torch

from lcm_core import paths
from lcm_core.training import TrainingConfig, train_lcd, train_lcf
from support.training_models import (configure_folders, encode, pretrain_teacher, student_lcm, student_one_step,
                                     teacher_ddim, tiny_handles, write_dataset)

PROMPTS = ["a red square", "a blue stripes", "a green square", "a yellow stripes"] * 2
SEEDS = [101, 102, 103, 104, 105, 106, 107, 108]


@pytest.fixture
def dirs(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dirs = configure_folders(tmp_path)
    write_dataset(dirs["input"] / "ds", 8)
    yield dirs
    paths.configure(None)
    torch.set_num_threads(threads)


def _first_last(log_path) -> tuple[float, float]:
    losses = [e["loss"] for e in json.loads(log_path.read_text())]
    k = len(losses) // 5
    return sum(losses[:k]) / k, sum(losses[-k:]) / k


@pytest.mark.slow
def test_lcd_loss_falls_and_student_approaches_teacher(dirs):
    model, clip, vae = tiny_handles()
    pretrain_teacher(model, clip, vae, dirs["input"] / "ds", steps=150)
    embeds, uncond = encode(clip, PROMPTS), encode(clip, [""])
    reference = teacher_ddim(model.unet, embeds, uncond, SEEDS, steps=25, guidance=3.0)
    before = (student_one_step(model.unet, embeds, SEEDS) - reference).pow(2).mean().item()
    four_before = (student_lcm(model.unet, embeds, SEEDS, 4) - reference).pow(2).mean().item()

    config = TrainingConfig(dataset_dir=str(dirs["input"] / "ds"), steps=60, resolution=32, batch_size=4,
                            lora_rank=8, learning_rate=2e-3, w_min=2.0, w_max=2.0, save_name="lcd", checkpoint_every=0)
    result = train_lcd(model, clip, vae, config)
    first, last = _first_last(result.log_path)
    assert last < 0.8 * first, (first, last)

    with result.model.materialized() as student:
        after = (student_one_step(student, embeds, SEEDS) - reference).pow(2).mean().item()
        four_after = (student_lcm(student, embeds, SEEDS, 4) - reference).pow(2).mean().item()
    print(f"one-step MSE to teacher {before:.4f} -> {after:.4f}; 4-step LCM {four_before:.4f} -> {four_after:.4f}")
    assert after < 0.85 * before, (before, after)
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
