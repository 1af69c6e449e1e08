"""What the loader node's combos list: checkpoint files and diffusers folders.

Files appear by their name relative to the `checkpoints` folder
(`sub/model.safetensors`); diffusers folders by their folder name relative to the
`diffusers` (or `checkpoints`) folder, without a trailing slash (`LCM_Dreamshaper_v7`).
A folder counts when it holds `model_index.json`, or `unet/config.json` (a UNet-only
pipeline), or is itself a UNet (`config.json` beside `diffusion_pytorch_model*`).
"""

from __future__ import annotations

from pathlib import Path

from .. import paths

COMPONENT_DIRS = {"unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"}


def _model_dirs(root: Path) -> set[str]:
    found: set[Path] = set()
    if not root.is_dir():
        return set()
    for marker in root.rglob("model_index.json"):
        found.add(marker.parent)
    for config in root.rglob("config.json"):
        folder = config.parent
        if folder.name == "unet" and not (folder.parent / "model_index.json").is_file():
            found.add(folder.parent)
        elif folder.name not in COMPONENT_DIRS and any(folder.glob("diffusion_pytorch_model*")):
            found.add(folder)
    return {p.relative_to(root).as_posix() for p in found if p != root}


def diffusers_names() -> list[str]:
    """Diffusers folders under the `diffusers` and `checkpoints` folders."""
    names: set[str] = set()
    for kind in ("diffusers", "checkpoints"):
        for root in paths.folders(kind):
            names |= _model_dirs(root)
    return sorted(names)


def checkpoint_names() -> list[str]:
    """Checkpoint files, then diffusers folders: the loader's `ckpt_name` choices."""
    files = [n for n in paths.list_files("checkpoints") if not any(part in COMPONENT_DIRS for part in
                                                                   n.split("/")[:-1])]
    return files + [n for n in diffusers_names() if n not in files]
