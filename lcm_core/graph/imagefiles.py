"""Image files and empty latents for the headless stand-ins of ComfyUI's core nodes.

Behaviour follows ComfyUI's `nodes.py` and `folder_paths.get_save_image_path`: files
are named `<prefix>_<counter:05>_.png`, the counter continues after the highest one
already in the folder, PNGs carry the `prompt` and each `extra_pnginfo` key (the
`workflow`) as JSON text chunks, and a loaded image's alpha becomes an inverted mask.
Unlike ComfyUI, a file that appears between counting and writing is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import LCMError, PathEscapeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")


def _compute_vars(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    for key, value in (("%width%", width), ("%height%", height), ("%year%", now.tm_year),
                       ("%month%", f"{now.tm_mon:02}"), ("%day%", f"{now.tm_mday:02}"),
                       ("%hour%", f"{now.tm_hour:02}"), ("%minute%", f"{now.tm_min:02}"),
                       ("%second%", f"{now.tm_sec:02}")):
        prefix = prefix.replace(key, str(value))
    return prefix


def save_image_path(prefix: str, folder: Path, width: int = 0, height: int = 0) -> tuple[Path, str, int, str]:
    """(folder, file stem, next counter, subfolder) for `prefix`, as ComfyUI computes them."""
    if "%" in prefix:
        prefix = _compute_vars(prefix, width, height)
    norm = os.path.normpath(prefix)
    subfolder, stem = os.path.dirname(norm), os.path.basename(norm)
    root = folder.resolve()
    target = (root / subfolder).resolve()
    if target != root and root not in target.parents:
        raise PathEscapeError(f"filename_prefix {prefix!r} leads outside the output folder",
                              input_name="filename_prefix", details="Use a plain prefix or a subfolder inside it.")
    counter = 1
    if target.is_dir():
        pattern = re.compile(re.escape(stem) + r"_(\d+)_?\.", re.IGNORECASE if os.name == "nt" else 0)
        found = [int(m.group(1)) for m in (pattern.match(p.name) for p in target.iterdir()) if m]
        counter = max(found, default=0) + 1
    target.mkdir(parents=True, exist_ok=True)
    return target, stem, counter, subfolder


def save_images(images: Any, filename_prefix: str, kind: str = "output", prompt: dict | None = None,
                extra_pnginfo: dict | None = None, compress_level: int = 4) -> list[dict]:
    """Write an `IMAGE` batch as PNGs into the `output` (or `temp`) folder; return the
    `{"filename", "subfolder", "type"}` records ComfyUI's frontend expects."""
    import numpy as np
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    folder, stem, counter, subfolder = save_image_path(filename_prefix, paths.io_dir(kind),
                                                       int(images[0].shape[1]), int(images[0].shape[0]))
    metadata = PngInfo()
    if prompt is not None:
        metadata.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        metadata.add_text(key, json.dumps(value))
    results = []
    for batch_number, image in enumerate(images):
        pixels = np.clip(255.0 * image.detach().cpu().float().numpy(), 0, 255).astype(np.uint8)
        picture = Image.fromarray(pixels)
        name_stem = stem.replace("%batch_num%", str(batch_number))
        while True:
            name = f"{name_stem}_{counter:05}_.png"
            try:
                with open(folder / name, "xb") as handle:
                    picture.save(handle, format="PNG", pnginfo=metadata, compress_level=compress_level)
                break
            except FileExistsError:
                counter += 1
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


def list_input_images() -> list[str]:
    """Image files directly in the input folder, sorted (LoadImage's combo)."""
    folder = paths.folders("input")[0]
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def image_path(name: str) -> Path:
    """The file `name` in the input folder (ComfyUI's `name [output]` annotations accepted)."""
    kind = "input"
    match = _ANNOTATION.match(name) if isinstance(name, str) else None
    if match:
        name, kind = match.group(1), match.group(2)
    return paths.resolve(kind, name, input_name="image")


def image_exists(name: str) -> bool:
    """True when `name` resolves to a file inside the input folder."""
    try:
        return image_path(name).is_file()
    except (LCMError, OSError):
        return False


def file_hash(name: str) -> str:
    """SHA-256 of the image file, so editing it on disk re-runs LoadImage."""
    return hashlib.sha256(image_path(name).read_bytes()).hexdigest()


def load_image(name: str) -> tuple[Any, Any]:
    """`(IMAGE [B,H,W,3], MASK [B,H,W])` as ComfyUI's LoadImage builds them: EXIF
    orientation applied, all frames of the first frame's size, mask = 1 - alpha."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps, ImageSequence

    with Image.open(image_path(name)) as picture:
        frames, masks, size = [], [], None
        for frame in ImageSequence.Iterator(picture):
            frame = ImageOps.exif_transpose(frame)
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            rgb = frame.convert("RGB")
            size = size or rgb.size
            if rgb.size != size:
                continue
            frames.append(torch.from_numpy(np.array(rgb).astype(np.float32) / 255.0)[None])
            if "A" in frame.getbands():
                alpha = np.array(frame.getchannel("A")).astype(np.float32) / 255.0
                masks.append((1.0 - torch.from_numpy(alpha))[None])
            elif frame.mode == "P" and "transparency" in frame.info:
                alpha = np.array(frame.convert("RGBA").getchannel("A")).astype(np.float32) / 255.0
                masks.append((1.0 - torch.from_numpy(alpha))[None])
            else:
                masks.append(torch.zeros((1, 64, 64), dtype=torch.float32))
        if len(frames) > 1 and picture.format != "MPO":
            return torch.cat(frames, dim=0), torch.cat(masks, dim=0)
        return frames[0], masks[0]


def empty_latent(width: int, height: int, batch_size: int = 1) -> dict:
    """`LATENT` of zeros `[B, 4, H/8, W/8]`, like ComfyUI's EmptyLatentImage."""
    import torch

    return {"samples": torch.zeros([batch_size, 4, height // 8, width // 8])}
