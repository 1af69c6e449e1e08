"""Captioned image folders: checked fully before training starts, encoded once.

A dataset is a folder of images with same-named `.txt` captions, or a folder with a
`metadata.jsonl` whose lines hold `file_name` and `text` (the 🤗 ImageFolder layout).
Every problem (empty folder, unreadable image, missing caption, image smaller than the
resolution) is found by `scan_dataset` and reported at once, before the first step.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_SHOWN = 5


@dataclass(frozen=True)
class Example:
    """One training image and its caption."""

    path: Path
    caption: str
    size: tuple[int, int]


def _fail(message: str, problems: list[str], fix: str) -> InputError:
    shown = "; ".join(problems[:_SHOWN]) + (f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else "")
    return InputError(message, input_name="dataset_dir", details=f"{shown}. {fix}".strip())


def _metadata_entries(folder: Path) -> list[tuple[Path, str | None]]:
    entries, problems = [], []
    real_root = folder.resolve()
    for n, line in enumerate((folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name, text = row["file_name"], row.get("text")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"line {n}: {exc.__class__.__name__} {exc}")
            continue
        path = folder / name
        if real_root not in path.resolve().parents:
            problems.append(f"line {n}: {name!r} is outside the dataset folder")
            continue
        entries.append((path, text if isinstance(text, str) else None))
    if problems:
        raise _fail(f"metadata.jsonl in {folder} has {len(problems)} bad line(s)", problems,
                    'Each line must be a JSON object like {"file_name": "a.png", "text": "a caption"}.')
    return entries


def _caption_entries(folder: Path) -> list[tuple[Path, str | None]]:
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    entries = []
    for path in images:
        txt = path.with_suffix(".txt")
        entries.append((path, txt.read_text(encoding="utf-8").strip() if txt.is_file() else None))
    return entries


def scan_dataset(folder: str | Path, resolution: int) -> list[Example]:
    """All examples of `folder`, or an `InputError` listing every problem found."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"dataset folder {folder} does not exist", input_name="dataset_dir",
                         details="Give a folder of images with same-named .txt captions, or with a metadata.jsonl.")
    has_metadata = (folder / "metadata.jsonl").is_file()
    entries = _metadata_entries(folder) if has_metadata else _caption_entries(folder)
    if not entries:
        raise InputError(f"dataset folder {folder} holds no images", input_name="dataset_dir",
                         details=f"Put images ({', '.join(IMAGE_EXTENSIONS)}) there, each with a same-named .txt "
                                 "caption, or a metadata.jsonl with file_name/text lines.")
    missing = [p.name for p, caption in entries if caption is None]
    if missing:
        how = "give each line a \"text\"" if has_metadata else "add a same-named .txt file for each"
        raise _fail(f"{len(missing)} image(s) in {folder} have no caption", missing, f"Captions are required: {how}.")
    unreadable, small, examples = [], [], []
    for path, caption in entries:
        try:
            with Image.open(path) as image:
                image.load()
                size = image.size
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            unreadable.append(f"{path.name} ({exc.__class__.__name__}: {exc})")
            continue
        if min(size) < resolution:
            small.append(f"{path.name} is {size[0]}x{size[1]}")
        examples.append(Example(path, caption, size))
    if unreadable:
        raise _fail(f"{len(unreadable)} image(s) in {folder} cannot be read", unreadable,
                    "Remove or re-save them as PNG/JPEG.")
    if small:
        raise _fail(f"{len(small)} image(s) in {folder} are smaller than the training resolution {resolution}",
                    small, "Lower `resolution` or remove/upscale those images (the shorter side must reach it).")
    return examples


def load_pixels(path: Path, resolution: int) -> torch.Tensor:
    """`[3, R, R]` in -1..1: RGB, shorter side resized to R (bicubic), center-cropped."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        scale = resolution / min(w, h)
        nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - resolution) // 2, (nh - resolution) // 2
        image = image.crop((left, top, left + resolution, top + resolution))
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """`prompt_embeds` as diffusers' SD pipelines build them (last hidden state), float32 CPU."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0].float().cpu()


@torch.no_grad()
def encode_images(vae, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE posterior's parameters (mean and log-variance, `[B, 8, h, w]`), float32 CPU."""
    param = next(vae.parameters())
    return vae.encode(pixels.to(param.device, param.dtype)).latent_dist.parameters.float().cpu()


def _module_checksum(module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))


class EncodedDataset:
    """Text embeddings of every caption (and of the empty prompt), and the VAE posterior
    of every image, either precomputed (`cache_latents`) or encoded per batch."""

    def __init__(self, examples: list[Example], resolution: int, tokenizer, text_encoder, vae, scaling_factor: float,
                 shift_factor: float = 0.0, cache_latents: bool = True, cache_dir: Path | None = None):
        self.examples = examples
        self.resolution = resolution
        self.vae = vae
        self.scaling_factor = scaling_factor
        self.shift_factor = shift_factor
        cache_file = None
        if cache_dir is not None:
            cache_file = Path(cache_dir) / f"encoded-{self._fingerprint(text_encoder, cache_latents)}.safetensors"
        if cache_file is not None and cache_file.is_file():
            from safetensors.torch import load_file

            tensors = load_file(str(cache_file))
        else:
            captions = [e.caption for e in examples]
            tensors = {"embeds": encode_prompts(tokenizer, text_encoder, captions),
                       "uncond": encode_prompts(tokenizer, text_encoder, [""])}
            if cache_latents:
                tensors["posterior"] = torch.cat([encode_images(vae, load_pixels(e.path, resolution)[None])
                                                  for e in examples])
            if cache_file is not None:
                _write_tensors(cache_file, tensors)
        self.embeds = tensors["embeds"]
        self.uncond = tensors["uncond"]
        self.posterior = tensors.get("posterior")

    def __len__(self) -> int:
        return len(self.examples)

    def _fingerprint(self, text_encoder, cache_latents: bool) -> str:
        parts = [self.resolution, cache_latents, self.scaling_factor, _module_checksum(text_encoder),
                 _module_checksum(self.vae) if cache_latents else 0.0]
        for e in self.examples:
            stat = os.stat(e.path)
            parts.append((e.path.name, e.caption, stat.st_size, stat.st_mtime_ns))
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def batch(self, indices: list[int], generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled latents (sampled from the posterior with `generator`) and text embeddings."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        if self.posterior is not None:
            params = self.posterior[indices]
        else:
            params = torch.cat([encode_images(self.vae, load_pixels(self.examples[i].path, self.resolution)[None])
                                for i in indices])
        latents = DiagonalGaussianDistribution(params).sample(generator=generator)
        latents = (latents - self.shift_factor) * self.scaling_factor
        return latents.to(device), self.embeds[indices].to(device)


def _write_tensors(path: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{socket.gethostname()}-{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)
