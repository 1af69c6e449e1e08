"""Read LoRA files and group their tensors into adapters, whatever the naming.

Layouts recognised (by key suffix and prefix):
- `peft`: diffusers/PEFT `unet.<module>.lora_A.weight` / `lora_B` (+ `text_encoder.`,
  `text_encoder_2.`); alpha from the `lora_adapter_metadata` header diffusers writes.
- `diffusers-old`: `<module>.lora.down.weight` / `.lora.up.weight`,
  `.lora_linear_layer.down.weight`, attention-processor names (`attn1.processor.to_q_lora`).
- `kohya`: `lora_unet_…` / `lora_te_…` / `lora_te1_…` / `lora_te2_…` with
  `.lora_down.weight` / `.lora_up.weight` (+ `.lora_mid.weight`) and a scalar `.alpha`,
  in diffusers module names or original-SD names (`input_blocks_1_1_…`).
- `comfyui`: `diffusion_model.<ldm module>.lora_up.weight`, `text_encoders.clip_l.…`.
LoHa (`hada_w1_a`…) and LoKr (`lokr_w1`…) factors may appear in any of the kohya-like
layouts. Only `.safetensors` is read: pickled files are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import LoraError
from .adapters import Adapter, LohaAdapter, LokrAdapter, LoraAdapter

# (suffix, adapter field, layout); longest suffixes first so `_lora.down` beats `.down`.
_SUFFIXES = (
    (".lora_linear_layer.down.weight", "down", "diffusers-old"),
    (".lora_linear_layer.up.weight", "up", "diffusers-old"),
    ("_lora.down.weight", "down", "diffusers-old"),
    ("_lora.up.weight", "up", "diffusers-old"),
    (".lora.down.weight", "down", "diffusers-old"),
    (".lora.up.weight", "up", "diffusers-old"),
    (".lora_A.weight", "down", "peft"),
    (".lora_B.weight", "up", "peft"),
    (".lora_down.weight", "down", None),
    (".lora_up.weight", "up", None),
    (".lora_mid.weight", "mid", None),
    (".alpha", "alpha", None),
    (".hada_w1_a", "w1a", None),
    (".hada_w1_b", "w1b", None),
    (".hada_w2_a", "w2a", None),
    (".hada_w2_b", "w2b", None),
    (".hada_t1", "t1", None),
    (".hada_t2", "t2", None),
    (".lokr_w1_a", "k_w1a", None),
    (".lokr_w1_b", "k_w1b", None),
    (".lokr_w2_a", "k_w2a", None),
    (".lokr_w2_b", "k_w2b", None),
    (".lokr_w1", "k_w1", None),
    (".lokr_w2", "k_w2", None),
    (".lokr_t2", "k_t2", None),
)
_UNSUPPORTED = (".dora_scale", ".diff", ".diff_b", ".w_norm", ".b_norm", ".set_weight")
ADAPTER_METADATA_KEY = "lora_adapter_metadata"


@dataclass
class LoraFile:
    """A LoRA as read from disk: its tensors, header metadata, layout and adapters.

    `adapters` maps each module name as the file spells it (`lora_unet_…`,
    `unet.down_blocks.0….`) to its adapter; `key_of` lists the file keys behind each.
    """

    name: str
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]
    layout: str
    adapters: dict[str, Adapter] = field(default_factory=dict)
    key_of: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kinds(self) -> set[str]:
        """Adapter kinds present: `lora`, `locon` (a conv with a kernel > 1), `loha`, `lokr`."""
        out = set()
        for a in self.adapters.values():
            conv = isinstance(a, LoraAdapter) and (a.mid is not None or a.down.dim() == 4 and a.down.shape[-1] > 1)
            out.add("locon" if conv else a.kind)
        return out

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def read_lora(path: str | Path) -> LoraFile:
    """Read a `.safetensors` LoRA, keep its metadata, and group its tensors into adapters."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise LoraError(f"lora {path.name!r}: only .safetensors files are read",
                        input_name="lora_name",
                        details="Pickled LoRAs (.pt/.ckpt/.bin) can run code when loaded; convert it to safetensors.")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise LoraError(f"lora {path.name!r} cannot be read: {exc}", input_name="lora_name",
                        details="The file is not a valid safetensors file (truncated download?).") from exc
    return parse_lora(tensors, metadata, name=path.name)


def parse_lora(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
               name: str = "<memory>") -> LoraFile:
    """Group an in-memory LoRA state dict into adapters (see module docstring for layouts)."""
    metadata = dict(metadata or {})
    groups: dict[str, dict[str, torch.Tensor]] = {}
    key_of: dict[str, list[str]] = {}
    layouts: set[str] = set()
    unknown: list[str] = []
    for key, value in tensors.items():
        if key.endswith(_UNSUPPORTED):
            raise LoraError(f"lora {name!r}: {key!r} is a DoRA/full-diff tensor, which is not supported",
                            input_name="lora_name", details="Only LoRA, LoCon, LoHa and LoKr factors can be applied.")
        for suffix, role, layout in _SUFFIXES:
            if key.endswith(suffix):
                module = key[: -len(suffix)]
                groups.setdefault(module, {})[role] = value
                key_of.setdefault(module, []).append(key)
                if layout:
                    layouts.add(layout)
                break
        else:
            unknown.append(key)
    if unknown:
        raise unmatched_error(name, unknown, len(tensors), "are not LoRA tensors of any known layout")
    if not groups:
        raise LoraError(f"lora {name!r} holds no tensors", input_name="lora_name")
    layout = _layout(groups, layouts)
    peft_alpha = _peft_alphas(metadata) if layout == "peft" else {}
    adapters: dict[str, Adapter] = {}
    for module, parts in groups.items():
        adapters[module] = _adapter(name, module, parts, peft_alpha)
    return LoraFile(name, dict(tensors), metadata, layout, adapters, key_of)


def _layout(groups: dict, layouts: set[str]) -> str:
    if "peft" in layouts:
        return "peft"
    if "diffusers-old" in layouts:
        return "diffusers-old"
    names = list(groups)
    if any(n.startswith(("diffusion_model.", "text_encoders.")) for n in names):
        return "comfyui"
    if any(n.startswith(("lora_unet_", "lora_te", "lycoris_")) for n in names):
        return "kohya"
    return "unknown"


def _peft_alphas(metadata: dict[str, str]) -> dict[str, float]:
    """`{component: alpha}` from diffusers' `lora_adapter_metadata` header, where present."""
    raw = metadata.get(ADAPTER_METADATA_KEY)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return {k[: -len(".lora_alpha")]: float(v) for k, v in data.items()
            if k.endswith(".lora_alpha") and v is not None}


def _scalar(t: torch.Tensor | None) -> float | None:
    return None if t is None else float(t.float().item())


def _adapter(name: str, module: str, p: dict[str, torch.Tensor], peft_alpha: dict[str, float]) -> Adapter:
    alpha = _scalar(p.get("alpha"))
    if "up" in p or "down" in p:
        if "up" not in p or "down" not in p:
            raise LoraError(f"lora {name!r}: module {module!r} has only one of its two LoRA factors",
                            input_name="lora_name", details="The file is incomplete.")
        if alpha is None and peft_alpha:
            alpha = peft_alpha.get(module.split(".", 1)[0])
        return LoraAdapter(up=p["up"], down=p["down"], alpha=alpha, mid=p.get("mid"))
    if "w1a" in p:
        return LohaAdapter(p["w1a"], p["w1b"], p["w2a"], p["w2b"], alpha, p.get("t1"), p.get("t2"))
    if any(k.startswith("k_") for k in p):
        return LokrAdapter(p.get("k_w1"), p.get("k_w2"), p.get("k_w1a"), p.get("k_w1b"),
                           p.get("k_w2a"), p.get("k_w2b"), p.get("k_t2"), alpha)
    raise LoraError(f"lora {name!r}: module {module!r} has an alpha but no factors", input_name="lora_name")


def unmatched_error(name: str, keys: list[str], total: int, why: str, hint: str = "",
                    shown: int = 12) -> LoraError:
    """A `LoraError` listing the first `shown` offending keys and their count."""
    keys = sorted(keys)
    listed = "\n".join(f"  {k}" for k in keys[:shown])
    more = f"\n  … and {len(keys) - shown} more" if len(keys) > shown else ""
    return LoraError(f"lora {name!r}: {len(keys)} of {total} keys {why}" + (f". {hint}" if hint else ""),
                     input_name="lora_name", details=f"Unmatched keys:\n{listed}{more}")
