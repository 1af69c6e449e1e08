"""Diffusers-format configs for each model family, kept in the repo (no hub access).

Each family folder is laid out like a diffusers pipeline repository without weights
(`unet/config.json`, `vae/config.json`, `text_encoder[_2]/config.json`,
`scheduler/scheduler_config.json`), so it can also be handed to diffusers'
`from_single_file(..., config=<folder>)`. Values are those of the published models:
SD1.5 (stable-diffusion-v1-5), SD2 512 epsilon (stable-diffusion-2-1-base), SD2 768
v-prediction (stable-diffusion-2-1), SDXL base 1.0, and `sd15-lcm` (LCM_Dreamshaper_v7:
`time_cond_proj_dim` 256, LCMScheduler with `original_inference_steps` 50).
"""

from __future__ import annotations

import contextlib
import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterator

CONFIG_ROOT = Path(__file__).resolve().parent
CONFIG_DIRS = ("sd15", "sd15-lcm", "sd2", "sd2-v", "sdxl")
LCM_SCHEDULER_DIR = "sd15-lcm"
_root = CONFIG_ROOT


def active_root() -> Path:
    """The folder configs are read from (the repo's, unless `use_root` is active)."""
    return _root


@contextlib.contextmanager
def use_root(root: Path) -> Iterator[Path]:
    """Read configs from `root` (same layout) inside the block: tests use it to load tiny
    architectures through the same code path as full-size ones."""
    global _root
    saved, _root = _root, Path(root)
    try:
        yield _root
    finally:
        _root = saved


def config_dir(family: str, lcm: bool = False) -> Path:
    """The folder holding `family`'s component configs (`sd15-lcm` for an LCM SD1.5)."""
    name = f"{family}-lcm" if lcm and (_root / f"{family}-lcm").is_dir() else family
    if not (_root / name).is_dir():
        raise KeyError(f"no configs for family {family!r} in {_root}; known: {', '.join(CONFIG_DIRS)}")
    return _root / name


@lru_cache(maxsize=None)
def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def component_config(family: str, component: str, lcm: bool = False) -> dict:
    """A fresh copy of the config of `component` (`unet`, `vae`, `text_encoder`, ...)."""
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    return copy.deepcopy(_read(config_dir(family, lcm) / component / name))


def scheduler_config(family: str, lcm: bool = False) -> dict:
    """The family's scheduler config; for an LCM-distilled UNet, LCMScheduler's with the
    family's prediction type."""
    if not lcm:
        return component_config(family, "scheduler")
    config = copy.deepcopy(_read(_root / LCM_SCHEDULER_DIR / "scheduler" / "scheduler_config.json"))
    config["prediction_type"] = component_config(family, "scheduler").get("prediction_type", "epsilon")
    return config
