"""`accelerate launch --multi_gpu` with two processes (on a CPU-only machine they run on
the CPU over gloo, as `make_accelerator` asks for the CPU): the same `lcm-train` code shards the
data, averages gradients, saves once from the main process, and resumes exactly: a run
resumed from its step-2 checkpoint ends bitwise where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from support.training_models import write_dataset
from test_training_cli import _diffusers_folder


def _launch(tmp_path, run: str, steps: int, resume: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
            "-m", "lcm_core.training.cli", "lcd", "--model", "tiny", "--models-dir", str(tmp_path / "models"),
            "--dataset-dir", str(tmp_path / "ds"), "--steps", str(steps), "--resolution", "32", "--lora-rank", "4",
            "--batch-size", "1", "--checkpoint-every", "2", "--save-name", run, "--output-dir", str(tmp_path / run)]
    if resume:
        args.append("--resume")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_two_process_launch_trains_saves_once_and_resumes_exactly(tmp_path):
    _diffusers_folder(tmp_path / "models" / "diffusers" / "tiny")
    write_dataset(tmp_path / "ds", 4)

    straight = _launch(tmp_path, "straight", 6)
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert straight.stdout.count("saved straight.safetensors") == 1, "only the main process reports and saves"
    first_leg = _launch(tmp_path, "resumed", 4)
    assert first_leg.returncode == 0, first_leg.stderr[-3000:]
    second_leg = _launch(tmp_path, "resumed", 6, resume=True)
    assert second_leg.returncode == 0, second_leg.stderr[-3000:]

    (checkpoint,) = (tmp_path / "straight" / "checkpoints").iterdir()
    assert sorted(p.name for p in checkpoint.glob("rng-*.pt")) == ["rng-0.pt", "rng-1.pt"], "two processes ran"

    log_a = json.loads((tmp_path / "straight" / "loss.json").read_text())
    log_b = json.loads((tmp_path / "resumed" / "loss.json").read_text())
    assert [e["step"] for e in log_a] == list(range(1, 7))
    assert log_a == log_b
    lora_a = load_file(str(tmp_path / "models" / "loras" / "straight.safetensors"))
    lora_b = load_file(str(tmp_path / "models" / "loras" / "resumed.safetensors"))
    assert lora_a.keys() == lora_b.keys() and all((lora_a[k] == lora_b[k]).all() for k in lora_a)
