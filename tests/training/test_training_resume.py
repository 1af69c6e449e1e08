"""Interrupting and resuming, and a failing checkpoint write, change nothing: the final
LoRA is bitwise the one of an uninterrupted run (CPU)."""

from __future__ import annotations

import errno

import pytest
import torch
from safetensors.torch import load_file

from lcm_core import progress
from lcm_core.errors import Interrupted
from lcm_core.training import TrainingConfig, checkpoint, train_lcd, train_lcf
from support.training_models import StopAfter, tiny_handles, training_folders

STEPS = 8


@pytest.fixture(autouse=True)
def setup(tmp_path):
    with training_folders(tmp_path, 6) as dirs:
        yield dirs


def _config(dirs, name: str, **kw) -> TrainingConfig:
    base = dict(dataset_dir=str(dirs["input"] / "ds"), steps=STEPS, resolution=32, batch_size=1, grad_accum=2,
                lora_rank=4, learning_rate=1e-3, seed=3, save_name=name, checkpoint_every=3, w_min=1.0, w_max=4.0)
    return TrainingConfig(**{**base, **kw})


def _lora(dirs, name: str) -> dict:
    return load_file(str(dirs["models"] / "loras" / f"{name}.safetensors"))


def _assert_bitwise(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_interrupt_then_resume_equals_uninterrupted_run(setup):
    dirs = setup
    train_lcd(*tiny_handles(), _config(dirs, "straight"))
    reference = _lora(dirs, "straight")

    stopper = StopAfter(5)
    with progress.use(stopper), pytest.raises(Interrupted):
        train_lcd(*tiny_handles(), _config(dirs, "resumed"))
    assert [s.i for s in stopper.steps] == [1, 2, 3, 4, 5]
    assert all(s.text.startswith("loss ") for s in stopper.steps)
    root = dirs["output"] / "lcm_training" / "resumed" / "checkpoints"
    assert [p.name for p in checkpoint.checkpoints(root)] == ["step-0000005"], "interrupt saves; older pruned"
    assert not (dirs["models"] / "loras" / "resumed.safetensors").exists()

    result = train_lcd(*tiny_handles(), _config(dirs, "resumed", resume=True))
    _assert_bitwise(reference, _lora(dirs, "resumed"))
    assert result.saved_name == "resumed.safetensors"
    straight_log = (dirs["output"] / "lcm_training" / "straight" / "loss.json").read_text()
    assert (dirs["output"] / "lcm_training" / "resumed" / "loss.json").read_text() == straight_log


def test_failing_checkpoint_write_keeps_last_good_one(setup, monkeypatch):
    dirs = setup
    train_lcf(*tiny_handles(), _config(dirs, "straight"))
    reference = _lora(dirs, "straight")

    real_save = checkpoint._save_file

    def full_disk(obj, path):
        if "step-0000006" in str(path) and path.name == "state.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, path)

    monkeypatch.setattr(checkpoint, "_save_file", full_disk)
    with pytest.raises(OSError, match="No space"):
        train_lcf(*tiny_handles(), _config(dirs, "crashy"))
    root = dirs["output"] / "lcm_training" / "crashy" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step-0000003"], "no half-written folder is left"
    state, _ = checkpoint.read(root / "step-0000003", 0)
    assert state["step"] == 3 and len(state["log"]) == 3

    monkeypatch.setattr(checkpoint, "_save_file", real_save)
    train_lcf(*tiny_handles(), _config(dirs, "crashy", resume=True))
    _assert_bitwise(reference, _lora(dirs, "crashy"))


def test_resume_refuses_changed_settings(setup):
    dirs = setup
    with progress.use(StopAfter(2)), pytest.raises(Interrupted):
        train_lcd(*tiny_handles(), _config(dirs, "run", steps=4))
    with pytest.raises(Exception, match="settings changed.*learning_rate"):
        train_lcd(*tiny_handles(), _config(dirs, "run", steps=4, resume=True, learning_rate=5e-4))
