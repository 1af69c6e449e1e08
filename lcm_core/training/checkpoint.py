"""Training checkpoints that are either complete or absent.

A checkpoint is a folder `step-NNNNNNN/` holding `state.pt` (trainable weights, EMA,
optimizer, lr scheduler, loss log, step) and one `rng-<rank>.pt` per process (torch,
CUDA, numpy and Python RNG states and the run's own generator). It is written into a
temporary folder and renamed into place, so a full disk or a crash mid-write leaves the
previous checkpoint as it was. Files are read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

PREFIX = "step-"


def _save_file(obj, path: Path) -> None:
    """Write one file and flush it to disk (the seam tests use to simulate a full disk)."""
    with open(path, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def rng_state(generator: torch.Generator) -> dict:
    """Every RNG the run draws from, as plain tensors and tuples."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.pt").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest(root: Path) -> Path | None:
    found = checkpoints(root)
    return found[-1] if found else None


def write(root: Path, step: int, state: dict | None, rng: dict, rank: int, barrier=lambda: None,
          keep: int = 1) -> Path:
    """Write checkpoint `step`: every rank writes its RNG file, rank 0 the shared state,
    then rank 0 renames the folder into place and prunes all but the newest `keep`."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".tmp-{PREFIX}{step:07d}"
    if rank == 0 and tmp.exists():
        shutil.rmtree(tmp)
    barrier()
    try:
        tmp.mkdir(exist_ok=True)
        _save_file(rng, tmp / f"rng-{rank}.pt")
        if rank == 0:
            _save_file(state, tmp / "state.pt")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    barrier()
    if rank == 0:
        if final.exists():
            old = root / f".old-{final.name}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        for stale in checkpoints(root)[:-max(keep, 1)]:
            shutil.rmtree(stale, ignore_errors=True)
    barrier()
    return final


def read(path: Path, rank: int) -> tuple[dict, dict]:
    """`(state, rng)` of the checkpoint folder `path` for process `rank`."""
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    rng_file = path / f"rng-{rank}.pt"
    if not rng_file.is_file():
        from ..errors import InputError

        raise InputError(f"checkpoint {path} has no RNG state for process {rank}", input_name="resume",
                         details="Resume with the same number of processes the run was started with.")
    return state, torch.load(rng_file, map_location="cpu", weights_only=True)
