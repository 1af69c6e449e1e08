"""Patches kept as low-rank factors, materialised on a shared base only inside a block.

A handle carries a tuple of `WeightPatch`es; nothing is merged until sampling (or text
encoding) enters `patched_module(s)`. There each touched weight is replaced by
`W + Σ strength · delta` computed in fp32 and cast to W's dtype, and on exit the very
tensor that was there before is put back, so the base is restored bit-exactly. Only the
touched weights are swapped, and a per-base lock keeps two materialisations of one
model from interleaving.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from ..errors import LoraError
from .adapters import Adapter


@dataclass(frozen=True, eq=False)
class WeightPatch:
    """`strength · adapter.delta` added to `module.weight` of component `component`
    (0: the UNet or the first text encoder, 1: the second text encoder)."""

    module: str
    adapter: Adapter
    strength: float
    component: int = 0
    source: str = ""


class _BaseLock:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None


_locks: "weakref.WeakKeyDictionary[torch.nn.Module, _BaseLock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _lock_for(module: torch.nn.Module) -> _BaseLock:
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = _locks[module] = _BaseLock()
        return lock


@contextlib.contextmanager
def _holding(modules: tuple) -> Iterator[None]:
    me = threading.get_ident()
    locks = [_lock_for(m) for m in modules]
    if any(lock.owner == me for lock in locks):
        raise LoraError("a patched model was materialised again inside its own materialisation",
                        details="Leave the first `materialized()` block before entering another on the same base.")
    taken = []
    try:
        for lock in locks:
            lock.lock.acquire()
            lock.owner = me
            taken.append(lock)
        yield
    finally:
        for lock in reversed(taken):
            lock.owner = None
            lock.lock.release()


def merged_weight(weight: torch.Tensor, patches: Iterable[WeightPatch]) -> torch.Tensor:
    """`W + Σ strength · delta` in fp32, cast to W's dtype (a new tensor; W is untouched)."""
    total = weight.detach().to(torch.float32)
    for patch in patches:
        if patch.strength != 0:
            total = total + patch.strength * patch.adapter.delta(weight.shape, device=weight.device)
    return total.to(weight.dtype)


@contextlib.contextmanager
def patched_modules(modules: tuple, patches: Iterable[WeightPatch]) -> Iterator[tuple]:
    """The modules with `patches` applied for the duration of the block, restored after."""
    modules = tuple(modules)
    grouped: dict[tuple[int, str], list[WeightPatch]] = defaultdict(list)
    for patch in patches:
        if patch.component >= len(modules):
            raise LoraError(f"a patch targets text encoder {patch.component + 1}, but there are {len(modules)}")
        grouped[(patch.component, patch.module)].append(patch)
    unique = tuple({id(m): m for m in modules}.values())
    with _holding(unique):
        swapped: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        try:
            with torch.no_grad():
                for (component, name), group in grouped.items():
                    weight = modules[component].get_submodule(name).weight
                    new = merged_weight(weight, group)
                    swapped.append((weight, weight.data))
                    weight.data = new
            yield modules
        finally:
            for weight, original in reversed(swapped):
                weight.data = original


@contextlib.contextmanager
def patched_module(module: torch.nn.Module, patches: Iterable[WeightPatch]) -> Iterator[torch.nn.Module]:
    """One module (a UNet) with `patches` applied for the block; see `patched_modules`."""
    with patched_modules((module,), patches) as (patched,):
        yield patched
