"""Write a LoRA in kohya layout (what ComfyUI's LoraLoader and A1111 read) or in
diffusers/PEFT layout (what `load_lora_weights` reads), atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

import torch

from ..errors import InputError
from .formats import ADAPTER_METADATA_KEY

_ARCHITECTURE = {"sd15": ("sd_v1", "stable-diffusion-v1/lora"),
                 "sd2": ("sd_v2", "stable-diffusion-v2-512/lora"),
                 "sd2-v": ("sd_v2", "stable-diffusion-v2-768-v/lora"),
                 "sdxl": ("sdxl_base_v1-0", "stable-diffusion-xl-v1-base/lora")}


def _pairs(state: dict[str, torch.Tensor], what: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """`{module: (down, up)}` from PEFT keys `<module>.lora_A.weight` / `.lora_B.weight`."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        for suffix, role in ((".lora_A.weight", "down"), (".lora_B.weight", "up")):
            if key.endswith(suffix):
                out.setdefault(key[: -len(suffix)], {})[role] = value
                break
        else:
            raise InputError(f"{what} key {key!r} is not a PEFT LoRA key (`….lora_A.weight` / `….lora_B.weight`)")
    for module, parts in out.items():
        if set(parts) != {"down", "up"}:
            raise InputError(f"{what} module {module!r} lacks one of lora_A / lora_B")
    return {m: (p["down"], p["up"]) for m, p in out.items()}


def _text_parts(text_encoder_lora: dict | None) -> list[dict[str, torch.Tensor]]:
    if not text_encoder_lora:
        return []
    if all(isinstance(v, dict) for v in text_encoder_lora.values()):
        return [text_encoder_lora.get("text_encoder") or {}, text_encoder_lora.get("text_encoder_2") or {}]
    return [text_encoder_lora]


def _te_module(module: str) -> str:
    return module if module.startswith("text_model.") or module == "text_projection" else f"text_model.{module}"


def save_lora(path: str | Path, unet_lora: dict[str, torch.Tensor], *, text_encoder_lora: dict | None = None,
              family: str, layout: Literal["kohya", "peft"], alpha: float | None = None,
              metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write a LoRA file and return its path.

    `unet_lora` holds PEFT keys relative to the UNet, as `peft.get_peft_model_state_dict`
    returns them; `text_encoder_lora` likewise relative to the text model, either one
    dict (the first text encoder) or `{"text_encoder": {...}, "text_encoder_2": {...}}`.
    `alpha=None` means alpha = rank (scale 1). An existing file is kept unless `overwrite`.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if family not in _ARCHITECTURE:
        raise InputError(f"unknown family {family!r}", details=f"Use one of {', '.join(_ARCHITECTURE)}.")
    if layout not in ("kohya", "peft"):
        raise InputError(f"unknown lora layout {layout!r}", details="Use 'kohya' or 'peft'.")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; refusing to overwrite it", details="Pick another name or pass overwrite=True.")
    unet = _pairs(unet_lora, "unet")
    texts = [_pairs(part, f"text encoder {i + 1}") for i, part in enumerate(_text_parts(text_encoder_lora))]
    ranks = {int(d.shape[0]) for d, _ in unet.values()} | {int(d.shape[0]) for t in texts for d, _ in t.values()}
    tensors: dict[str, torch.Tensor] = {}
    header = {"lcm_core.family": family, "ss_base_model_version": _ARCHITECTURE[family][0],
              "modelspec.architecture": _ARCHITECTURE[family][1]}
    if layout == "kohya":
        te_prefix = ("lora_te1_", "lora_te2_") if family == "sdxl" else ("lora_te_",)
        groups = [("lora_unet_", {m: v for m, v in unet.items()})]
        groups += [(te_prefix[i], {_te_module(m): v for m, v in t.items()}) for i, t in enumerate(texts)]
        for prefix, modules in groups:
            for module, (down, up) in modules.items():
                name = prefix + module.replace(".", "_")
                tensors[f"{name}.lora_down.weight"] = down.detach().contiguous()
                tensors[f"{name}.lora_up.weight"] = up.detach().contiguous()
                tensors[f"{name}.alpha"] = torch.tensor(float(alpha if alpha is not None else down.shape[0]))
        if len(ranks) == 1:
            rank = ranks.pop()
            header.update(ss_network_dim=str(rank), ss_network_alpha=str(alpha if alpha is not None else rank))
    else:
        adapter_meta = {}
        names = ("text_encoder", "text_encoder_2")
        for prefix, modules in [("unet", unet)] + [(names[i], t) for i, t in enumerate(texts)]:
            if not modules:
                continue
            module_ranks = {int(d.shape[0]) for d, _ in modules.values()}
            rank = max(module_ranks)
            for module, (down, up) in modules.items():
                tensors[f"{prefix}.{module}.lora_A.weight"] = down.detach().contiguous()
                tensors[f"{prefix}.{module}.lora_B.weight"] = up.detach().contiguous()
            adapter_meta.update({
                f"{prefix}.r": rank,
                f"{prefix}.lora_alpha": float(alpha if alpha is not None else rank),
                f"{prefix}.target_modules": sorted(modules),
                f"{prefix}.rank_pattern": {m: int(d.shape[0]) for m, (d, _) in modules.items()
                                           if int(d.shape[0]) != rank},
            })
        if any(len({int(d.shape[0]) for d, _ in t.values()}) > 1 for t in [unet, *texts] if t) and alpha is None:
            raise InputError("PEFT layout with mixed ranks needs an explicit alpha")
        header[ADAPTER_METADATA_KEY] = json.dumps(adapter_meta, sort_keys=True)
    header.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; a saved LoRA is an ordinary file
        if path.exists() and not overwrite:
            raise InputError(f"{path} appeared while writing; refusing to overwrite it")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _default_file_mode() -> int:
    """The mode `open()` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
