"""Textual-inversion embeddings named in prompts as `embedding:name`, found and read as
ComfyUI finds and reads them.

A name is looked up in every `embeddings` folder and its sub-folders, as given and with
`.safetensors`, `.pt`, `.bin` appended. Only safetensors files are read (the others are
pickles; they are refused with the fix). From a file's tensors ComfyUI's choice is taken:
the one named for the text encoder (`clip_l`, `clip_g`, `clip_h`), else a LoRA-bundled
embedding (`bundle_emb.<name>.string_to_param.*`, then `bundle_emb.<name>.<key>`), else
the first tensor. Each row is one token's input embedding.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import paths
from ..errors import InputError, ModelFormatError, PathEscapeError
from .weights import embedding_name

log = logging.getLogger(__name__)

EMBEDDING_EXTENSIONS = (".safetensors", ".pt", ".bin")


def find_embedding(name: str) -> Path | None:
    """The file `embedding:name` refers to, or None when there is none."""
    if not name:
        return None
    name = paths.check_name(name, input_name="text")
    for folder in paths.folders("embeddings"):
        if not folder.is_dir():
            continue
        for sub in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
            for candidate in [sub / name] + [sub / (name + ext) for ext in EMBEDDING_EXTENSIONS]:
                if candidate.is_file():
                    return _inside(candidate, folder)
    return None


def _inside(path: Path, folder: Path) -> Path:
    """`path`, after checking that it (symlinks followed) stays inside `folder`."""
    real, root = path.resolve(), folder.resolve()
    if root not in real.parents:
        raise PathEscapeError(f"embedding {path.name} resolves outside the embeddings folder", input_name="text",
                              details=f"{path} points to {real}, which is not inside {root}.")
    return path


def _bundled(tensors: dict, suffix: str) -> torch.Tensor | None:
    found = [t for k, t in tensors.items() if k.startswith("bundle_emb.") and k.endswith(suffix)]
    return torch.cat(found, dim=0) if found else None


def load_embedding(path: Path, key: str) -> torch.Tensor:
    """The `[tokens, dim]` vectors `path` holds for the text encoder named `key`."""
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise InputError(
            f"embedding {path.name} is a pickle file; only .safetensors embeddings are read", input_name="text",
            details="Pickled files can run code when loaded. Convert it to .safetensors "
                    "(e.g. with safetensors.torch.save_file) or use the .safetensors release.")
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # the safetensors reader raises several unrelated types
        raise ModelFormatError(f"embedding {path.name} is not a readable safetensors file: {exc}",
                               input_name="text") from exc
    if not tensors:
        raise ModelFormatError(f"embedding {path.name} holds no tensors", input_name="text")
    vectors = tensors.get(key)
    if vectors is None:
        vectors = _bundled(tensors, ".string_to_param.*")
    if vectors is None:
        vectors = _bundled(tensors, f".{key}")
    if vectors is None:
        vectors = next(iter(tensors.values()))
    return vectors.reshape(-1, vectors.shape[-1]) if vectors.ndim != 1 else vectors.unsqueeze(0)


def embedding_vectors(piece: str, key: str) -> tuple[torch.Tensor | None, str]:
    """`(vectors, leftover text)` for a prompt piece that starts with `embedding:`.

    A name with trailing commas is retried without them (`embedding:x,` finds `x`), the
    commas going back to the text. A name that finds no file gives `None`: the reference
    is dropped with a warning, as ComfyUI drops it.
    """
    name, leftover = embedding_name(piece)
    path = find_embedding(name)
    if path is None:
        stripped = name.strip(",")
        if len(stripped) < len(name):
            path = find_embedding(stripped)
            leftover = f"{name[len(stripped):]} {leftover}"
    if path is None:
        log.warning("embedding:%s does not exist, ignoring", name)
        return None, leftover
    return load_embedding(path, key), leftover
