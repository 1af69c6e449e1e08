"""Model, input and output folders in ComfyUI's layout, and safe name resolution.

Inside ComfyUI the node layer installs a provider backed by its `folder_paths`; headless,
the folders come from `--models-dir`, `LCM_MODELS_DIR`, or an existing ComfyUI install's
`models/`. Every name given by a user resolves inside one of its kind's folders or is
refused: no `..`, no absolute paths, no symlink that leads out.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import ModelNotFoundError, PathEscapeError

MODEL_KINDS = ("checkpoints", "loras", "vae", "diffusers", "embeddings")
IO_KINDS = ("input", "output", "temp")
MODEL_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")


class FolderProvider(Protocol):
    """Where each kind of file lives: a list of folders, searched in order."""

    def folders(self, kind: str) -> list[Path]: ...


@dataclass
class LocalFolders:
    """Headless folders: `<models_dir>/<kind>` plus explicit input/output/temp folders."""

    models_dir: Path
    input_dir: Path | None = None
    output_dir: Path | None = None
    temp_dir: Path | None = None
    extra: dict[str, list[Path]] = field(default_factory=dict)

    def folders(self, kind: str) -> list[Path]:
        if kind in IO_KINDS:
            explicit = {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}[kind]
            return [Path(explicit) if explicit else Path.cwd() / kind]
        if kind not in MODEL_KINDS:
            raise KeyError(f"unknown folder kind {kind!r}; known: {', '.join(MODEL_KINDS + IO_KINDS)}")
        return [Path(self.models_dir) / kind, *self.extra.get(kind, [])]


PACK_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def default_models_dir() -> Path:
    """`LCM_MODELS_DIR`, else a ComfyUI install's `models/` (`COMFYUI_PATH`), else the
    pack's own `models/` folder with the shipped demo models (in a clone or a custom_nodes
    folder), else `./models` (an installed wheel run from a clone's root)."""
    env = os.environ.get("LCM_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    comfy = os.environ.get("COMFYUI_PATH")
    if comfy and (Path(comfy).expanduser() / "models").is_dir():
        return Path(comfy).expanduser() / "models"
    if PACK_MODELS_DIR.is_dir():
        return PACK_MODELS_DIR
    return Path.cwd() / "models"


_provider: FolderProvider | None = None


def configure(provider: FolderProvider | None) -> None:
    """Install the folder provider (ComfyUI's adapter, or `LocalFolders` for the CLI)."""
    global _provider
    _provider = provider


def provider() -> FolderProvider:
    """The active provider; headless defaults to `LocalFolders(default_models_dir())`."""
    global _provider
    if _provider is None:
        _provider = LocalFolders(default_models_dir())
    return _provider


def folders(kind: str) -> list[Path]:
    """The folders searched for `kind`, in order."""
    return provider().folders(kind)


def io_dir(kind: str) -> Path:
    """The first folder of `input`, `output` or `temp`, created if missing."""
    path = folders(kind)[0]
    path.mkdir(parents=True, exist_ok=True)
    return path


def list_files(kind: str, extensions: tuple[str, ...] = MODEL_EXTENSIONS) -> list[str]:
    """Relative names (with `/`) of files under the kind's folders, sorted, unique."""
    names: set[str] = set()
    for root in folders(kind):
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.is_file() and path.suffix.lower() in extensions:
                names.add(path.relative_to(root).as_posix())
    return sorted(names)


def list_dirs(kind: str, marker: str) -> list[str]:
    """Relative names of folders under the kind's folders that hold a `marker` file."""
    names: set[str] = set()
    for root in folders(kind):
        if not root.is_dir():
            continue
        for path in root.rglob(marker):
            names.add(path.parent.relative_to(root).as_posix())
    return sorted(n for n in names if n != ".")


def check_name(name: str, *, input_name: str | None = None) -> str:
    """Refuse names that are absolute or climb with `..`; return the normalised name."""
    if not isinstance(name, str) or not name.strip():
        raise PathEscapeError("empty file name", input_name=input_name, details="Pick a file from the list.")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in norm.split("/"):
        raise PathEscapeError(
            f"{name!r} is not a plain name inside its folder",
            input_name=input_name,
            details="Names are relative to the model folder; '..' and absolute paths are refused.",
        )
    return norm


def resolve(kind: str, name: str, *, input_name: str | None = None, must_exist: bool = True) -> Path:
    """The path of `name` inside one of `kind`'s folders.

    Raises `PathEscapeError` when the name (or a symlink on its way) leads outside the
    folder, and `ModelNotFoundError` listing close matches when nothing is there.
    """
    norm = check_name(name, input_name=input_name)
    roots = folders(kind)
    for root in roots:
        candidate = root / norm
        real_root = root.resolve()
        real = candidate.resolve()
        if real != real_root and real_root not in real.parents:
            raise PathEscapeError(
                f"{name!r} resolves outside the {kind} folder",
                input_name=input_name,
                details=f"{candidate} points to {real}, which is not inside {real_root}.",
            )
        if candidate.exists() or not must_exist:
            return candidate
    known = list_files(kind) + list_dirs(kind, "model_index.json")
    close = difflib.get_close_matches(norm, known, n=5, cutoff=0.4)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    where = ", ".join(str(r) for r in roots)
    raise ModelNotFoundError(
        f"{name!r} not found in the {kind} folder",
        input_name=input_name,
        details=f"Looked in {where}.{hint}",
    )
