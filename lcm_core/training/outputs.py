"""What a run leaves behind: the LoRA (kohya layout in `loras`, PEFT layout beside the
logs), or a diffusers folder for a full-UNet LCF; the loss log (CSV, JSON) and its plot."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .. import paths


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_lora_outputs(unet_lora: dict, save_name: str, family: str, alpha: float, run_dir: Path,
                      metadata: dict, with_peft: bool) -> Path:
    """The kohya-layout LoRA into the `loras` folder (its path returned) and, optionally, the
    PEFT layout into `run_dir`."""
    from ..lora.save import save_lora

    name = save_name if save_name.endswith(".safetensors") else f"{save_name}.safetensors"
    target = paths.resolve("loras", name, input_name="save_name", must_exist=False)
    save_lora(target, unet_lora, family=family, layout="kohya", alpha=alpha, metadata=metadata, overwrite=True)
    if with_peft:
        save_lora(run_dir / f"{Path(name).stem}.peft.safetensors", unet_lora, family=family, layout="peft",
                  alpha=alpha, metadata=metadata, overwrite=True)
    return target


def save_diffusers_folder(unet, clip, vae, scheduler_config: dict, save_name: str) -> Path:
    """A full-UNet result as a diffusers pipeline folder in the `diffusers` models folder,
    swapped into place only once completely written."""
    from diffusers import LCMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    name = save_name.removesuffix(".safetensors")
    target = paths.resolve("diffusers", name, input_name="save_name", must_exist=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    scheduler = LCMScheduler.from_config(scheduler_config)
    if clip.family == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=vae.vae, text_encoder=clip.text_encoders[0],
                                         text_encoder_2=clip.text_encoders[1], tokenizer=clip.tokenizers[0],
                                         tokenizer_2=clip.tokenizers[1], unet=unet, scheduler=scheduler)
    else:
        pipe = StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.text_encoders[0], tokenizer=clip.tokenizers[0],
                                       unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if target.exists():
            old = target.with_name(f".{target.name}.old{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_loss_log(run_dir: Path, log: list[dict]) -> Path:
    """`loss.csv` and `loss.json` (step, loss, lr per optimizer step); returns the JSON path."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["step", "loss", "lr"])
    writer.writeheader()
    writer.writerows(log)
    _atomic_bytes(run_dir / "loss.csv", buf.getvalue().encode())
    _atomic_bytes(run_dir / "loss.json", json.dumps(log, indent=1).encode())
    return run_dir / "loss.json"


def draw_loss_curve(losses: list[float], title: str, size: tuple[int, int] = (640, 360)) -> Image.Image:
    """The loss per step (thin) and its running mean (thick), drawn with Pillow."""
    w, h = size
    left, right, top, bottom = 64, 16, 28, 36
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((left, 8), title, fill=(0, 0, 0))
    draw.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    if not losses:
        return image
    values = np.asarray(losses, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo or 1.0
    n = len(values)

    def point(i: int, v: float) -> tuple[float, float]:
        x = left + (w - right - left) * (i / max(n - 1, 1))
        y = (h - bottom) - (h - bottom - top) * ((v - lo) / span)
        return x, y

    window = max(1, n // 20)
    smooth = np.convolve(values, np.ones(window) / window, mode="valid")
    draw.line([point(i, v) for i, v in enumerate(values)] if n > 1 else [point(0, values[0])] * 2,
              fill=(150, 180, 230), width=1)
    offset = window - 1
    draw.line([point(i + offset, v) for i, v in enumerate(smooth)] if len(smooth) > 1
              else [point(offset, smooth[0])] * 2, fill=(20, 60, 160), width=3)
    for frac in (0.0, 0.5, 1.0):
        v = lo + span * frac
        draw.text((4, point(0, v)[1] - 6), f"{v:.4g}", fill=(0, 0, 0))
    draw.text((left, h - bottom + 6), "step 1", fill=(0, 0, 0))
    draw.text((w - right - 60, h - bottom + 6), f"step {n}", fill=(0, 0, 0))
    return image


def image_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as ComfyUI's `IMAGE`: float32 `[1, H, W, 3]` in 0..1."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)[None]


def save_curve(run_dir: Path, losses: list[float], title: str) -> torch.Tensor:
    image = draw_loss_curve(losses, title)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    _atomic_bytes(run_dir / "loss.png", buf.getvalue())
    return image_tensor(image)
