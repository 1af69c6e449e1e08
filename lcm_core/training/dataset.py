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


def crop_box(size: tuple[int, int], resolution: int) -> tuple[int, int, int, int]:
    """`(width, height, left, top)`: the image of `size` resized so its shorter side is
    `resolution`, and the top-left corner of the centred `resolution` square cut from it."""
    w, h = size
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    return nw, nh, (nw - resolution) // 2, (nh - resolution) // 2


def load_pixels(path: Path, resolution: int) -> torch.Tensor:
    """`[3, R, R]` in -1..1: RGB, shorter side resized to R (bicubic), center-cropped."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        nw, nh, left, top = crop_box(image.size, resolution)
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
        image = image.crop((left, top, left + resolution, top + resolution))
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def size_ids(example: Example, resolution: int) -> list[int]:
    """SDXL's `time_ids` of `example`: original (height, width), crop (top, left) and target
    size, as diffusers' SDXL training scripts compute them for a resize + center crop."""
    _, _, left, top = crop_box(example.size, resolution)
    return [example.size[1], example.size[0], top, left, resolution, resolution]


@dataclass
class TextCondition:
    """What the UNet takes besides latents and timesteps: text embeddings and, for SDXL,
    the pooled text embedding and the size ids (`added_cond_kwargs`)."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    time_ids: torch.Tensor | None = None

    def unet_kwargs(self) -> dict:
        kwargs: dict = {"encoder_hidden_states": self.embeds}
        if self.pooled is not None:
            kwargs["added_cond_kwargs"] = {"text_embeds": self.pooled, "time_ids": self.time_ids}
        return kwargs

    def _map(self, fn) -> "TextCondition":
        return TextCondition(*(None if t is None else fn(t) for t in (self.embeds, self.pooled, self.time_ids)))

    def select(self, indices) -> "TextCondition":
        return self._map(lambda t: t[indices])

    def to(self, device) -> "TextCondition":
        return self._map(lambda t: t.to(device))

    def with_uncond(self, uncond: "TextCondition") -> "TextCondition":
        """This batch, then `uncond` repeated to its size (same size ids): one CFG pass."""
        def stack(a, b):
            return None if a is None else torch.cat([a, b.to(a.device).expand_as(a)])
        return TextCondition(stack(self.embeds, uncond.embeds), stack(self.pooled, uncond.pooled),
                             stack(self.time_ids, self.time_ids))


@torch.no_grad()
def encode_prompts(tokenizers, text_encoders, prompts: list[str], family: str) -> dict[str, torch.Tensor]:
    """`prompt_embeds` as diffusers' training scripts build them (captions cut at 77
    tokens), float32 CPU: `{"embeds"}`, each encoder's hidden state that
    `text.encode.ENCODER_OUTPUTS` names for `family` (SD1.x/SD2.x the last, SDXL both
    penultimate ones) joined, and `"pooled"` from the encoder that gives one (SDXL's second)."""
    from ..text.encode import ENCODER_OUTPUTS

    encoded, embeds = {}, []
    for tokenizer, encoder, output in zip(tokenizers, text_encoders, ENCODER_OUTPUTS[family]):
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        out = encoder(ids.to(encoder.device), output_hidden_states=output.penultimate)
        embeds.append((out.hidden_states[-2] if output.penultimate else out.last_hidden_state).float().cpu())
        if output.pooled:
            encoded["pooled"] = out.text_embeds.float().cpu()
    encoded["embeds"] = torch.cat(embeds, dim=-1)
    return encoded


@torch.no_grad()
def encode_images(vae, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE posterior's parameters (mean and log-variance, `[B, 8, h, w]`), float32 CPU."""
    param = next(vae.parameters())
    return vae.encode(pixels.to(param.device, param.dtype)).latent_dist.parameters.float().cpu()


def _module_checksum(module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))


class EncodedDataset:
    """Text embeddings of every caption and the unconditional ones (the empty prompt; zeros
    for SDXL, as its pipelines and diffusers' SDXL distillation script use), SDXL's size
    ids, and the VAE posterior of every image, precomputed (`cache_latents`) or encoded
    per batch."""

    def __init__(self, examples: list[Example], resolution: int, tokenizers, text_encoders, vae,
                 scaling_factor: float, shift_factor: float = 0.0, cache_latents: bool = True,
                 cache_dir: Path | None = None, family: str = "sd15"):
        self.examples = examples
        self.resolution = resolution
        self.vae = vae
        self.scaling_factor = scaling_factor
        self.shift_factor = shift_factor
        cache_file = None
        if cache_dir is not None:
            name = self._fingerprint(text_encoders, cache_latents, family)
            cache_file = Path(cache_dir) / f"encoded-{name}.safetensors"
        if cache_file is not None and cache_file.is_file():
            from safetensors.torch import load_file

            tensors = load_file(str(cache_file))
        else:
            tensors = self._encode(tokenizers, text_encoders, family, cache_latents)
            if cache_file is not None:
                _write_tensors(cache_file, tensors)
        self.text = TextCondition(tensors["embeds"], tensors.get("pooled"), tensors.get("time_ids"))
        self.uncond = TextCondition(tensors["uncond"], tensors.get("uncond_pooled"))
        self.posterior = tensors.get("posterior")

    def _encode(self, tokenizers, text_encoders, family: str, cache_latents: bool) -> dict[str, torch.Tensor]:
        encoded = encode_prompts(tokenizers, text_encoders, [e.caption for e in self.examples], family)
        tensors = {"embeds": encoded["embeds"]}
        if family == "sdxl":
            tensors["pooled"] = encoded["pooled"]
            tensors["time_ids"] = torch.tensor([size_ids(e, self.resolution) for e in self.examples],
                                               dtype=torch.float32)
            tensors["uncond"] = torch.zeros_like(encoded["embeds"][:1])
            tensors["uncond_pooled"] = torch.zeros_like(encoded["pooled"][:1])
        else:
            tensors["uncond"] = encode_prompts(tokenizers, text_encoders, [""], family)["embeds"]
        if cache_latents:
            tensors["posterior"] = torch.cat([encode_images(self.vae, load_pixels(e.path, self.resolution)[None])
                                              for e in self.examples])
        return tensors

    def __len__(self) -> int:
        return len(self.examples)

    def _fingerprint(self, text_encoders, cache_latents: bool, family: str) -> str:
        parts = [self.resolution, cache_latents, self.scaling_factor, family,
                 [_module_checksum(e) for e in text_encoders], _module_checksum(self.vae) if cache_latents else 0.0]
        for e in self.examples:
            stat = os.stat(e.path)
            parts.append((e.path.name, e.caption, stat.st_size, stat.st_mtime_ns))
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def batch(self, indices: list[int], generator: torch.Generator, device) -> tuple[torch.Tensor, TextCondition]:
        """Scaled latents (sampled from the posterior with `generator`) and their text condition."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        if self.posterior is not None:
            params = self.posterior[indices]
        else:
            params = torch.cat([encode_images(self.vae, load_pixels(self.examples[i].path, self.resolution)[None])
                                for i in indices])
        latents = DiagonalGaussianDistribution(params).sample(generator=generator)
        latents = (latents - self.shift_factor) * self.scaling_factor
        return latents.to(device), self.text.select(indices).to(device)


def _write_tensors(path: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{socket.gethostname()}-{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)
