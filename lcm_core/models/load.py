"""`load_checkpoint`: a checkpoint file or diffusers folder -> `LCM_MODEL`, `LCM_CLIP`, `LCM_VAE`.

Names are resolved inside the model folders (`checkpoints`, then `diffusers`); a name
with a model file extension is a checkpoint file, any other name a diffusers folder (in
either folder). A `pathlib.Path` is taken as given (for tests and scripts). A UNet-only
source (a diffusers UNet folder or file, or an ldm file holding only
`model.diffusion_model.*`) takes its text encoders and VAE from `base`.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from .. import devices, paths
from ..errors import FamilyMismatchError, ModelFormatError, ModelNotFoundError
from . import configs
from .assemble import Parts
from .cache import MODELS, signature
from .detect import detect_family
from .diffusers_folder import is_diffusers_folder, load_folder
from .handles import LCMClip, LCMModel, LCMVae
from .reader import StateReader
from .single_file import load_single_file

SHARED_PARTS = {"sd15": "sd15", "sd2": "sd2", "sd2-v": "sd2", "sdxl": "sdxl"}


def _not_found(name: str, input_name: str | None) -> ModelNotFoundError:
    known = paths.list_files("checkpoints") + paths.list_dirs("checkpoints", "model_index.json") \
        + paths.list_dirs("diffusers", "model_index.json") + paths.list_dirs("diffusers", "config.json")
    close = difflib.get_close_matches(name, sorted(set(known)), n=5, cutoff=0.4)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    where = ", ".join(str(p) for p in paths.folders("checkpoints") + paths.folders("diffusers"))
    return ModelNotFoundError(f"{name!r} not found in the checkpoints or diffusers folders", input_name=input_name,
                              details=f"Looked in {where}.{hint}")


def resolve_source(name_or_path: str | os.PathLike, input_name: str | None = "ckpt_name") -> Path:
    """The file or folder a checkpoint name (or explicit path) points to."""
    if isinstance(name_or_path, os.PathLike):
        path = Path(name_or_path)
        if not path.exists():
            raise ModelNotFoundError(f"{str(path)!r} does not exist", input_name=input_name,
                                     details="Give an existing checkpoint file or diffusers folder.")
        return path
    name = paths.check_name(name_or_path, input_name=input_name)
    kinds = ("checkpoints",) if name.lower().endswith(paths.MODEL_EXTENSIONS) else ("checkpoints", "diffusers")
    for kind in kinds:
        try:
            return paths.resolve(kind, name, input_name=input_name)
        except ModelNotFoundError:
            continue
    raise _not_found(name, input_name)


def _load_parts(path: Path, dtype: Any, device: Any, input_name: str | None, with_unet: bool = True) -> Parts:
    if path.is_dir():
        if not is_diffusers_folder(path):
            raise ModelFormatError(f"{path.name}: folder is not a diffusers model", input_name=input_name,
                                   details="Expected model_index.json with unet/, vae/, text_encoder/ ... or a "
                                           "UNet folder (config.json + diffusion_pytorch_model.safetensors).")
        return load_folder(path, dtype, device=device, input_name=input_name, with_unet=with_unet)
    with StateReader(path, input_name=input_name) as reader:
        det = detect_family(reader.shapes(), reader.metadata, reader.get, source=path.name, input_name=input_name)
        return load_single_file(reader, det, dtype, device=device, input_name=input_name, with_unet=with_unet)


def _with_base(parts: Parts, base: str | os.PathLike | None, dtype: Any, device: Any, source: str) -> Parts:
    if parts.vae is not None and parts.text_encoders:
        return parts
    if base is None:
        raise ModelFormatError(
            f"{source}: holds a UNet but no {'VAE' if parts.vae is None else 'text encoder'}",
            input_name="base_ckpt_name",
            details="Choose a base checkpoint of the same family (base_ckpt_name) to take the text encoders and "
                    "VAE from.")
    base_path = resolve_source(base, "base_ckpt_name")
    base_parts = _load_parts(base_path, dtype, device, "base_ckpt_name", with_unet=False)
    if SHARED_PARTS[base_parts.family] != SHARED_PARTS[parts.family]:
        raise FamilyMismatchError(f"base {base_path.name} is {base_parts.family}, the UNet {source} is {parts.family}",
                                  input_name="base_ckpt_name", details="Choose a base checkpoint of the UNet's family.")
    if base_parts.vae is None or not base_parts.text_encoders:
        raise ModelFormatError(f"base {base_path.name}: has no VAE and text encoders to lend",
                               input_name="base_ckpt_name", details="Choose a full checkpoint as the base.")
    parts.vae = parts.vae if parts.vae is not None else base_parts.vae
    if not parts.text_encoders:
        parts.text_encoders, parts.tokenizers = base_parts.text_encoders, base_parts.tokenizers
    return parts


def _key(path: Path, dtype: Any, device: Any, base_path: Path | None) -> tuple:
    real = path.resolve()
    base = (str(base_path.resolve()), signature(base_path)) if base_path is not None else None
    return (str(real), signature(real), str(dtype), str(device), base, str(configs.active_root()))


def load_checkpoint(name_or_path: str | os.PathLike, dtype: str = "auto", device: str | None = None,
                    base: str | os.PathLike | None = None) -> tuple[LCMModel, LCMClip, LCMVae]:
    """Load a checkpoint (cached) as the three handles the loader node outputs.

    `dtype`: auto (fp16 on CUDA/MPS, fp32 on CPU), fp16, bf16 or fp32; `device`: see
    `lcm_core.devices.pick_device`; `base`: a full checkpoint lending its text encoders and
    VAE to a UNet-only source.
    """
    path = resolve_source(name_or_path, "ckpt_name")
    base_path = resolve_source(base, "base_ckpt_name") if base is not None else None
    dev = devices.pick_device(device)
    torch_dtype = devices.pick_dtype(dtype, dev)
    key = _key(path, torch_dtype, dev, base_path)
    cached = MODELS.get(key)
    if cached is not None:
        return cached
    source = name_or_path if isinstance(name_or_path, str) else path.name
    parts = _with_base(_load_parts(path, torch_dtype, dev, "ckpt_name"), base_path, torch_dtype, dev, path.name)
    vae_config = parts.vae.config
    extra = {"dtype": str(torch_dtype).replace("torch.", ""), "device": str(dev),
             "scaling_factor": float(vae_config.scaling_factor),
             "shift_factor": float(vae_config.get("shift_factor") or 0.0)}
    model = LCMModel(unet=parts.unet, family=parts.family, prediction_type=parts.prediction_type,
                     scheduler_config=parts.scheduler_config, lcm_distilled=parts.lcm_distilled,
                     method="lcm" if parts.lcm_distilled else "none", source=source, extra=extra)
    clip = LCMClip(tokenizers=parts.tokenizers, text_encoders=parts.text_encoders, family=parts.family, source=source)
    vae = LCMVae(vae=parts.vae, family=parts.family, scaling_factor=float(vae_config.scaling_factor),
                 shift_factor=float(vae_config.get("shift_factor") or 0.0), source=source)
    result = (model, clip, vae)
    MODELS.put(key, result)
    return result
