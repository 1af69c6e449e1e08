"""Read tensors from a checkpoint file one at a time, without unpickling untrusted code.

`.safetensors` files are opened lazily with `safetensors.safe_open` (only the header is
read until a tensor is asked for). Pickle-based files (`.ckpt`, `.pt`, `.pth`, `.bin`)
are read only through `torch.load(weights_only=True)`, which refuses any object that is
not plain tensors and containers; a refusal becomes a `ModelFormatError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import ModelFormatError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class StateReader:
    """Names, shapes and (on demand) values of the tensors in one checkpoint file."""

    def __init__(self, path: Path, *, input_name: str | None = None):
        self.path = Path(path)
        self.input_name = input_name
        self.metadata: dict[str, str] = {}
        self._handle: Any = None
        self._tensors: dict[str, Any] | None = None
        suffix = self.path.suffix.lower()
        if suffix in SAFETENSORS_SUFFIXES:
            self._open_safetensors()
        elif suffix in PICKLE_SUFFIXES:
            self._open_pickle()
        else:
            raise ModelFormatError(f"{self.path.name}: unknown checkpoint format {suffix!r}", input_name=input_name,
                                   details=f"Supported: {', '.join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)}.")
        self._shapes: dict[str, tuple[int, ...]] = {}

    def _open_safetensors(self) -> None:
        from safetensors import safe_open

        try:
            self._handle = safe_open(str(self.path), framework="pt", device="cpu")
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise ModelFormatError(
                f"{self.path.name}: not a readable safetensors file ({exc})", input_name=self.input_name,
                details="The file is truncated or corrupt (an interrupted download?). Download it again.") from exc
        self.metadata = dict(self._handle.metadata() or {})

    def _open_pickle(self) -> None:
        import torch

        try:
            obj = torch.load(str(self.path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ModelFormatError(
                f"{self.path.name}: refused to load a pickle that holds more than tensors",
                input_name=self.input_name,
                details=f"Only plain tensor checkpoints are read (torch.load weights_only=True). {exc} "
                        "Convert the file to .safetensors with a tool you trust, or use a .safetensors release.",
            ) from exc
        except Exception as exc:
            raise ModelFormatError(f"{self.path.name}: not a readable checkpoint ({exc})", input_name=self.input_name,
                                   details="The file is truncated or corrupt. Download it again.") from exc
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise ModelFormatError(f"{self.path.name}: holds a {type(obj).__name__}, not a state dict",
                                   input_name=self.input_name, details="Expected a mapping of tensor names to tensors.")
        self._tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}

    def keys(self) -> list[str]:
        """Every tensor name in the file."""
        if self._tensors is not None:
            return list(self._tensors)
        return list(self._handle.keys())

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of `key`, read from the header (no tensor data is read)."""
        if key not in self._shapes:
            if self._tensors is not None:
                self._shapes[key] = tuple(self._tensors[key].shape)
            else:
                self._shapes[key] = tuple(self._handle.get_slice(key).get_shape())
        return self._shapes[key]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """All names with their shapes."""
        return {k: self.shape(k) for k in self.keys()}

    def get(self, key: str, dtype: Any = None):
        """The tensor `key`, cast to `dtype` when given (floating tensors only)."""
        try:
            tensor = self._tensors[key] if self._tensors is not None else self._handle.get_tensor(key)
        except Exception as exc:
            raise ModelFormatError(f"{self.path.name}: tensor {key!r} cannot be read ({exc})",
                                   input_name=self.input_name,
                                   details="The file is truncated or corrupt. Download it again.") from exc
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor

    def read(self, prefix: str, dtype: Any = None) -> dict:
        """Every tensor whose name starts with `prefix`, keyed by its full name."""
        return {key: self.get(key, dtype) for key in self.keys() if key.startswith(prefix)}

    def close(self) -> None:
        """Drop the file handle and any loaded pickle contents."""
        self._handle = None
        self._tensors = None

    def __enter__(self) -> "StateReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
