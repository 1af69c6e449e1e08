"""Training LCMs: Latent Consistency Fine-tuning (`train_lcf`) and LCM-LoRA distillation
(`train_lcd`) on accelerate, with resumable checkpoints, loss logs and plots.

Importing this package is cheap; torch, diffusers and accelerate load with the methods.
"""

from __future__ import annotations

from .config import TrainingConfig

__all__ = ["TrainingConfig", "TrainingResult", "train_lcf", "train_lcd"]


def __getattr__(name: str):
    if name == "train_lcf":
        from .lcf import train_lcf

        return train_lcf
    if name == "train_lcd":
        from .lcd import train_lcd

        return train_lcd
    if name == "TrainingResult":
        from .loop import TrainingResult

        return TrainingResult
    raise AttributeError(name)
