"""What the training nodes call: resolve the dataset inside the input folder, build the
config, train, and hand back the node's outputs; and the dataset signature that lets an
unchanged graph skip retraining while an edited dataset folder retrains."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import paths
from ..errors import LCMError
from .config import TrainingConfig


def dataset_path(dataset_dir: str) -> Path:
    """`dataset_dir` inside the input folder; absolute names and `..` are refused."""
    return paths.resolve("input", dataset_dir, input_name="dataset_dir")


def dataset_signature(dataset_dir: str) -> str:
    """A hash of the dataset folder's file names, sizes and modification times (no reads)."""
    try:
        folder = dataset_path(dataset_dir)
        entries = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder) if e.is_file())
    except (OSError, LCMError) as exc:
        return f"unavailable: {exc}"
    return hashlib.sha256(repr(entries).encode()).hexdigest()


def train_node(method: str, model, clip, vae, dataset_dir: str, steps: int, learning_rate: float, batch_size: int,
               resolution: int, lora_rank: int, seed: int, save_name: str, resume: bool = False) -> tuple:
    """Run LCF or LCD for a node; returns `(LCM_MODEL, saved name, loss-curve IMAGE)`."""
    from .lcd import train_lcd
    from .lcf import train_lcf

    config = TrainingConfig(method=method, dataset_dir=str(dataset_path(dataset_dir)), steps=steps,
                            learning_rate=learning_rate, batch_size=batch_size, resolution=resolution,
                            lora_rank=lora_rank, seed=seed, save_name=save_name, resume=resume,
                            checkpoint_every=max(1, min(100, steps // 4)))
    result = (train_lcf if method == "lcf" else train_lcd)(model, clip, vae, config)
    return result.model, result.saved_name, result.loss_curve
