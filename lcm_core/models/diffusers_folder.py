"""Diffusers folders: `model_index.json` with `unet/`, `vae/`, `text_encoder*/`,
`tokenizer*/`, `scheduler/`, or a UNet-only folder (`unet/` alone, or a folder that is
itself a UNet: `config.json` + weights). Everything is read with
`from_pretrained(<local path>, local_files_only=True)`; nothing reaches a hub.
"""

from __future__ import annotations

import contextlib
import json
import pickle
from pathlib import Path
from typing import Any, Iterator

from ..errors import LCMError, ModelFormatError
from . import configs
from .assemble import Parts
from .detect import family_from_unet_config

WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


def is_diffusers_folder(path: Path) -> bool:
    """True for a pipeline folder (`model_index.json` or `unet/config.json`) or a bare UNet folder."""
    return path.is_dir() and ((path / "model_index.json").is_file() or (path / "unet" / "config.json").is_file()
                              or _is_unet_dir(path))


def _is_unet_dir(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    return json.loads(config.read_text(encoding="utf-8")).get("_class_name") == "UNet2DConditionModel"


def _variant(folder: Path) -> str | None:
    """`fp16` when the folder only has `*.fp16.safetensors` weights (as some repos ship)."""
    names = {p.name for p in folder.iterdir()}
    if any(f"{n}.safetensors" in names or f"{n}.bin" in names for n in WEIGHT_NAMES):
        return None
    if any(f"{n}.fp16.safetensors" in names or f"{n}.fp16.bin" in names for n in WEIGHT_NAMES):
        return "fp16"
    return None


def _unet_dir(path: Path) -> Path:
    return path if _is_unet_dir(path) else path / "unet"


def load_unet(path: Path, dtype: Any, device: Any = None):
    """The folder's UNet."""
    from diffusers import UNet2DConditionModel

    folder = _unet_dir(path)
    unet = UNet2DConditionModel.from_pretrained(folder, local_files_only=True, torch_dtype=dtype,
                                                variant=_variant(folder))
    return _ready(unet, device)


def _ready(module, device: Any):
    """`module` on `device`, in eval mode, without gradients."""
    if device is not None:
        module.to(device)
    return module.eval().requires_grad_(False)


def _text_encoder(folder: Path, dtype: Any, device: Any):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cls = CLIPTextModelWithProjection if "CLIPTextModelWithProjection" in config.get("architectures", ()) \
        else CLIPTextModel
    return _ready(cls.from_pretrained(folder, local_files_only=True, dtype=dtype, variant=_variant(folder)), device)


def _tokenizer(folder: Path, fallback):
    from transformers import CLIPTokenizer

    if (folder / "vocab.json").is_file() or (folder / "tokenizer.json").is_file():
        return CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    return fallback


@contextlib.contextmanager
def _reading(path: Path, input_name: str | None) -> Iterator[None]:
    """Turn the libraries' errors about a broken folder into one `ModelFormatError`."""
    try:
        yield
    except LCMError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelFormatError(
            f"{path.name}: cannot load this diffusers folder ({type(exc).__name__}: {first[:300]})",
            input_name=input_name,
            details="A component's config or weights are missing or corrupt, or a .bin file holds more than tensors "
                    "(pickled code is refused). Download the model again, preferably as .safetensors.") from exc


def load_folder(path: Path, dtype: Any, *, device: Any = None, input_name: str | None = None,
                with_unet: bool = True) -> Parts:
    """Every component the folder holds (a UNet-only folder gives only the UNet); with
    `with_unet=False` the UNet's weights are not loaded (a base for another UNet)."""
    with _reading(path, input_name):
        return _load_folder(path, dtype, device, input_name, with_unet)


def _load_folder(path: Path, dtype: Any, device: Any, input_name: str | None, with_unet: bool) -> Parts:
    from diffusers import AutoencoderKL

    from ..text.tokenizer import family_tokenizers

    sched_file = path / "scheduler" / "scheduler_config.json"
    scheduler = json.loads(sched_file.read_text(encoding="utf-8")) if sched_file.is_file() else None
    if not (_unet_dir(path) / "config.json").is_file():
        raise ModelFormatError(f"{path.name}: diffusers folder has no unet/", input_name=input_name,
                               details="Expected unet/config.json and its weights (diffusion_pytorch_model.safetensors).")
    unet_config = json.loads((_unet_dir(path) / "config.json").read_text(encoding="utf-8"))
    prediction = (scheduler or {}).get("prediction_type", "epsilon")
    family = family_from_unet_config(unet_config, prediction, source=path.name, input_name=input_name)
    lcm = unet_config.get("time_cond_proj_dim") is not None
    unet = load_unet(path, dtype, device) if with_unet else None
    if scheduler is None:
        scheduler = configs.scheduler_config(family, lcm=lcm)
    scheduler.setdefault("prediction_type", prediction)
    parts = Parts(family=family, prediction_type=prediction, scheduler_config=scheduler, lcm_distilled=lcm, unet=unet)
    if (path / "vae" / "config.json").is_file():
        parts.vae = _ready(AutoencoderKL.from_pretrained(path / "vae", local_files_only=True, torch_dtype=dtype,
                                                         variant=_variant(path / "vae")), device)
    names = [n for n in TEXT_ENCODERS if (path / n / "config.json").is_file()]
    if names:
        defaults = family_tokenizers(family)
        if len(names) != len(defaults):
            raise ModelFormatError(f"{path.name}: has {len(names)} text encoder(s); {family} needs {len(defaults)}",
                                   input_name=input_name, details="The folder's text encoders do not fit its UNet.")
        parts.text_encoders = tuple(_text_encoder(path / n, dtype, device) for n in names)
        parts.tokenizers = tuple(_tokenizer(path / n.replace("text_encoder", "tokenizer"), d)
                                 for n, d in zip(names, defaults))
    return parts
