"""Low-rank weight adapters and their merge formulas (LoRA/LoCon, LoHa, LoKr).

An adapter holds the factors exactly as the file stores them; `delta(shape)` returns the
fp32 weight difference at strength 1, alpha scaling included. Nothing here knows about
file layouts or model names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_TUCKER = "i j k l, j r, i p -> p r k l"


def _f32(t: torch.Tensor | None, device: torch.device | str | None = None) -> torch.Tensor | None:
    return None if t is None else t.to(device=device, dtype=torch.float32)


@dataclass(frozen=True, eq=False)
class LoraAdapter:
    """Plain LoRA / LoCon: `delta = (alpha / rank) · up @ down` (flattened over kernels).

    `up` is `[out, r]` or `[out, r, 1, 1]`, `down` `[r, in]` or `[r, in, k, k]`; `mid`
    (LoCon's Tucker core, `[r, r, k, k]`) is optional. `alpha=None` means scale 1.
    """

    up: torch.Tensor
    down: torch.Tensor
    alpha: float | None = None
    mid: torch.Tensor | None = None

    kind = "lora"

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return 1.0 if self.alpha is None else float(self.alpha) / self.rank

    def out_numel(self) -> tuple[int, int]:
        """(output rows, element count) of the delta, without computing it."""
        out = int(self.up.shape[0])
        if self.mid is not None:
            return out, out * int(self.down.shape[1] * math.prod(self.mid.shape[2:]))
        return out, out * int(math.prod(self.down.shape[1:]))

    def delta(self, shape: torch.Size | tuple, device: torch.device | str | None = None) -> torch.Tensor:
        up, down = _f32(self.up, device), _f32(self.down, device)
        if self.mid is not None:
            down = torch.einsum("abhw,bi->aihw", _f32(self.mid, device), down.flatten(1))
        diff = up.flatten(1) @ down.flatten(1)
        return (self.scale * diff).reshape(shape)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(t for t in (self.up, self.down, self.mid) if t is not None)


@dataclass(frozen=True, eq=False)
class LohaAdapter:
    """LoHa: `delta = (alpha / rank) · (w1a @ w1b) ⊙ (w2a @ w2b)`; with Tucker cores
    `t1`/`t2` each factor is `einsum('ijkl,jr,ip->prkl', t, wb, wa)`."""

    w1a: torch.Tensor
    w1b: torch.Tensor
    w2a: torch.Tensor
    w2b: torch.Tensor
    alpha: float | None = None
    t1: torch.Tensor | None = None
    t2: torch.Tensor | None = None

    kind = "loha"

    @property
    def rank(self) -> int:
        return int(self.w1b.shape[0])

    @property
    def scale(self) -> float:
        return 1.0 if self.alpha is None else float(self.alpha) / self.rank

    def out_numel(self) -> tuple[int, int]:
        """(output rows, element count) of the delta, without computing it."""
        if self.t1 is None:
            out = int(self.w1a.shape[0])
            return out, out * int(math.prod(self.w1b.shape[1:]))
        out = int(self.w1a.shape[1])
        return out, out * int(self.w1b.shape[1] * math.prod(self.t1.shape[2:]))

    @staticmethod
    def _factor(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | None, device) -> torch.Tensor:
        if t is None:
            return _f32(a, device) @ _f32(b, device).flatten(1)
        return torch.einsum(_TUCKER, _f32(t, device), _f32(b, device), _f32(a, device))

    def delta(self, shape: torch.Size | tuple, device: torch.device | str | None = None) -> torch.Tensor:
        w1 = self._factor(self.w1a, self.w1b, self.t1, device)
        w2 = self._factor(self.w2a, self.w2b, self.t2, device)
        return (self.scale * (w1 * w2)).reshape(shape)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(t for t in (self.w1a, self.w1b, self.w2a, self.w2b, self.t1, self.t2) if t is not None)


@dataclass(frozen=True, eq=False)
class LokrAdapter:
    """LoKr: `delta = scale · kron(w1, w2)`, each factor given whole or as `a @ b`
    (`w2` optionally with a Tucker core `t2`). `scale = alpha / rank` where a factor is
    decomposed (rank = its `b.shape[0]`), else 1, as LyCORIS and ComfyUI do."""

    w1: torch.Tensor | None = None
    w2: torch.Tensor | None = None
    w1a: torch.Tensor | None = None
    w1b: torch.Tensor | None = None
    w2a: torch.Tensor | None = None
    w2b: torch.Tensor | None = None
    t2: torch.Tensor | None = None
    alpha: float | None = None

    kind = "lokr"

    @property
    def rank(self) -> int | None:
        if self.w2b is not None:
            return int(self.w2b.shape[0])
        if self.w1b is not None:
            return int(self.w1b.shape[0])
        return None

    @property
    def scale(self) -> float:
        rank = self.rank
        return 1.0 if self.alpha is None or rank is None else float(self.alpha) / rank

    def _w1(self, device) -> torch.Tensor:
        return _f32(self.w1, device) if self.w1 is not None else _f32(self.w1a, device) @ _f32(self.w1b, device)

    def _w2(self, device) -> torch.Tensor:
        if self.w2 is not None:
            return _f32(self.w2, device)
        if self.t2 is not None:
            return torch.einsum(_TUCKER, _f32(self.t2, device), _f32(self.w2b, device), _f32(self.w2a, device))
        return _f32(self.w2a, device) @ _f32(self.w2b, device)

    def out_numel(self) -> tuple[int, int]:
        """(output rows, element count) of the delta, without computing it."""
        w1 = tuple(self.w1.shape) if self.w1 is not None else (self.w1a.shape[0], self.w1b.shape[1])
        if self.w2 is not None:
            w2 = tuple(self.w2.shape)
        elif self.t2 is not None:
            w2 = (self.w2a.shape[1], self.w2b.shape[1], *self.t2.shape[2:])
        else:
            w2 = (self.w2a.shape[0], self.w2b.shape[1])
        return int(w1[0] * w2[0]), int(math.prod(w1) * math.prod(w2))

    def delta(self, shape: torch.Size | tuple, device: torch.device | str | None = None) -> torch.Tensor:
        w1, w2 = self._w1(device), self._w2(device)
        while w1.dim() < w2.dim():
            w1 = w1.unsqueeze(-1)
        return (self.scale * torch.kron(w1, w2)).reshape(shape)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        parts = (self.w1, self.w2, self.w1a, self.w1b, self.w2a, self.w2b, self.t2)
        return tuple(t for t in parts if t is not None)


Adapter = LoraAdapter | LohaAdapter | LokrAdapter


def fits(adapter: Adapter, shape: torch.Size | tuple) -> bool:
    """Whether the adapter's delta has the target weight's output rows and size."""
    out, numel = adapter.out_numel()
    return out == shape[0] and numel == math.prod(shape)


def adapter_nbytes(adapter: Adapter) -> int:
    """Bytes held by the adapter's factors."""
    return sum(t.numel() * t.element_size() for t in adapter.tensors())
