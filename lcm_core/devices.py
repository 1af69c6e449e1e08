"""Device and dtype choice: auto means CUDA fp16, else MPS fp16, else CPU fp32."""

from __future__ import annotations

import os

DTYPE_CHOICES = ("auto", "fp16", "bf16", "fp32")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(choice: str | None = None):
    """The torch device for `choice` (`auto`, `cpu`, `cuda`, `mps`); `LCM_DEVICE` overrides auto."""
    import torch

    from .errors import InputError

    choice = choice or os.environ.get("LCM_DEVICE", "auto")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice not in DEVICE_CHOICES:
        raise InputError(f"unknown device {choice!r}", input_name="device", details=f"Use one of {DEVICE_CHOICES}.")
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for but CUDA is not available", input_name="device",
                         details="Use --device auto or cpu.")
    return torch.device(choice)


def pick_dtype(choice: str, device) -> "torch.dtype":  # noqa: F821
    """The torch dtype for `choice` on `device`: auto is fp16 on CUDA/MPS and fp32 on CPU."""
    import torch

    from .errors import InputError

    if choice not in DTYPE_CHOICES:
        raise InputError(f"unknown dtype {choice!r}", input_name="dtype", details=f"Use one of {DTYPE_CHOICES}.")
    if choice == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[choice]
