"""bf16 mixed precision (the CPU can run it; fp16 needs a GPU): the frozen UNet runs in
bf16 under autocast, the LoRA weights stay fp32, and the run learns what the fp32 run
learns, up to bf16 rounding (measured: cosine 0.93 between the two LoRA updates; a
random direction gives about 0)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from lcm_core.errors import InputError
from lcm_core.training import TrainingConfig, train_lcd
from support.training_models import tiny_handles, training_folders


def _config(dirs, name: str, precision: str) -> TrainingConfig:
    return TrainingConfig(dataset_dir=str(dirs["input"] / "ds"), steps=6, resolution=32, batch_size=2, lora_rank=4,
                          learning_rate=1e-3, seed=3, save_name=name, w_min=1.0, w_max=4.0,
                          mixed_precision=precision)


def _deltas(lora: dict) -> torch.Tensor:
    """Every module's B @ A, flattened and joined: the update the LoRA makes."""
    downs = sorted(k for k in lora if k.endswith("lora_down.weight"))
    parts = []
    for down in downs:
        a, b = lora[down].float(), lora[down.replace("lora_down", "lora_up")].float()
        parts.append((b.flatten(1) @ a.flatten(1)).flatten())
    return torch.cat(parts)


def test_bf16_lcd_keeps_fp32_lora_weights_and_learns_the_fp32_update(tmp_path, one_thread):
    with training_folders(tmp_path, 6) as dirs:
        full = train_lcd(*tiny_handles(), _config(dirs, "fp32", "no"))
        mixed = train_lcd(*tiny_handles(), _config(dirs, "bf16", "bf16"))
        reference = load_file(str(dirs["models"] / "loras" / "fp32.safetensors"))
        lora = load_file(str(dirs["models"] / "loras" / "bf16.safetensors"))
    assert lora.keys() == reference.keys()
    assert all(t.dtype == torch.float32 for t in lora.values())
    assert all(torch.isfinite(t).all() for t in lora.values())
    update, expected = _deltas(lora), _deltas(reference)
    assert expected.norm() > 0
    cosine = torch.nn.functional.cosine_similarity(update, expected, dim=0)
    assert cosine > 0.8, f"bf16 update points elsewhere than fp32's (cosine {cosine:.3f})"
    assert not torch.equal(update, expected), "bf16 made no difference: autocast did not run"
    assert full.loss_curve.shape == mixed.loss_curve.shape


def test_fp16_on_the_cpu_is_refused_before_training(tmp_path):
    with training_folders(tmp_path, 6) as dirs, pytest.raises(InputError, match="fp16 mixed precision needs a GPU"):
        train_lcd(*tiny_handles(), _config(dirs, "fp16", "fp16"))
