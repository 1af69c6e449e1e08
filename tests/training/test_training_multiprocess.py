"""`accelerate launch --multi_gpu` with two processes (on a CPU-only machine they run on
the CPU over gloo, as `make_accelerator` asks for the CPU): the same `lcm-train` code shards the
data, averages gradients, saves once from the main process, and resumes exactly: a run
resumed from its step-2 checkpoint ends bitwise where an uninterrupted run ends. Two
"machines" (two launchers with `--num_machines 2`, one process each, over localhost and
one shared output folder, as nodes with a network filesystem) train what one machine with
two processes trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from support.training_models import write_dataset
from test_training_cli import _diffusers_folder


def _command(tmp_path, run: str, steps: int, machines: tuple[int, int] = (1, 0), port: int = 29517) -> list[str]:
    """The launch command of machine `machines[1]` of `machines[0]`, two processes in all."""
    count, rank = machines
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", str(count), "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
            "-m", "lcm_core.training.cli", "lcd", "--model", "tiny", "--models-dir", str(tmp_path / "models"),
            "--dataset-dir", str(tmp_path / "ds"), "--steps", str(steps), "--resolution", "32", "--lora-rank", "4",
            "--batch-size", "1", "--checkpoint-every", "2", "--save-name", run, "--output-dir", str(tmp_path / run)]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))


def _launch(tmp_path, run: str, steps: int, resume: bool = False) -> subprocess.CompletedProcess:
    """One machine, two processes; the run must succeed."""
    args = _command(tmp_path, run, steps) + (["--resume"] if resume else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def workspace(tmp_path):
    """A tiny SD model folder and a 4-image dataset under `tmp_path`."""
    _diffusers_folder(tmp_path / "models" / "diffusers" / "tiny")
    write_dataset(tmp_path / "ds", 4)
    return tmp_path


def _assert_same_result(tmp_path, run_a: str, run_b: str, steps: int) -> None:
    """Runs `run_a` and `run_b` each checkpointed both processes' RNG, logged the same
    losses and saved bitwise the same LoRA."""
    for run in (run_a, run_b):
        (checkpoint,) = (tmp_path / run / "checkpoints").iterdir()
        assert sorted(p.name for p in checkpoint.glob("rng-*.pt")) == ["rng-0.pt", "rng-1.pt"], "two processes ran"
    log_a = json.loads((tmp_path / run_a / "loss.json").read_text())
    assert [e["step"] for e in log_a] == list(range(1, steps + 1))
    assert log_a == json.loads((tmp_path / run_b / "loss.json").read_text())
    lora_a, lora_b = (load_file(str(tmp_path / "models" / "loras" / f"{run}.safetensors")) for run in (run_a, run_b))
    assert lora_a.keys() == lora_b.keys() and all((lora_a[k] == lora_b[k]).all() for k in lora_a)


@pytest.mark.slow
def test_two_process_launch_trains_saves_once_and_resumes_exactly(workspace):
    straight = _launch(workspace, "straight", 6)
    assert straight.stdout.count("saved straight.safetensors") == 1, "only the main process reports and saves"
    _launch(workspace, "resumed", 4)
    _launch(workspace, "resumed", 6, resume=True)
    _assert_same_result(workspace, "straight", "resumed", 6)


@pytest.mark.slow
def test_two_machine_launch_trains_what_one_machine_with_two_processes_trains(workspace):
    _launch(workspace, "one", 4)
    nodes = [subprocess.Popen(_command(workspace, "two", 4, machines=(2, rank), port=29523), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env()) for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]
    assert [out.count("saved two.safetensors") for out, _ in outputs] == [1, 0], "only machine 0 reports and saves"
    _assert_same_result(workspace, "one", "two", 4)
