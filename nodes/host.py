"""The bridge to ComfyUI when the pack runs inside it.

ComfyUI has already imported `folder_paths`, `comfy.utils`, `comfy.model_management`
and `server` before it loads custom nodes; headless none of them exist and this module
does nothing. `install()` points the engine's folders at ComfyUI's, and `run()` wraps an
engine call so its progress reaches ComfyUI's progress bar and previews and ComfyUI's
interrupt button stops it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ._engine import engine


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def comfy_modules() -> dict[str, ModuleType] | None:
    """ComfyUI's modules the node layer touches, or None when not inside ComfyUI."""
    folder_paths = _optional("folder_paths")
    if folder_paths is None:
        return None
    return {
        "folder_paths": folder_paths,
        "utils": _optional("comfy.utils"),
        "model_management": _optional("comfy.model_management"),
        "server": _optional("server"),
    }


def inside_comfyui() -> bool:
    """True when ComfyUI's `folder_paths` is importable (the pack is loaded by ComfyUI)."""
    return comfy_modules() is not None


class ComfyFolders:
    """`lcm_core.paths` provider backed by ComfyUI's `folder_paths`."""

    def __init__(self, folder_paths: ModuleType):
        self.fp = folder_paths

    def folders(self, kind: str) -> list[Path]:
        if kind == "input":
            return [Path(self.fp.get_input_directory())]
        if kind == "output":
            return [Path(self.fp.get_output_directory())]
        if kind == "temp":
            return [Path(self.fp.get_temp_directory())]
        try:
            return [Path(p) for p in self.fp.get_folder_paths(kind)]
        except KeyError:
            return []


class ComfyReporter:
    """Sends engine steps to ComfyUI's progress bar (with a latent preview) and reads
    ComfyUI's interrupt flag."""

    def __init__(self, modules: dict[str, ModuleType], preview: Callable[[Any], Any] | None = None):
        self.utils = modules["utils"]
        self.mm = modules["model_management"]
        self.preview = preview
        self.bar = None

    def step(self, step) -> None:
        if self.utils is None:
            return
        if self.bar is None or self.bar.total != step.total:
            self.bar = self.utils.ProgressBar(step.total)
        image = None
        if self.preview is not None and step.denoised is not None:
            image = ("JPEG", self.preview(step.denoised), 512)
        self.bar.update_absolute(step.i, step.total, image)

    def interrupted(self) -> bool:
        return bool(self.mm is not None and self.mm.processing_interrupted())


SHIPPED_KINDS = ("diffusers", "loras")


def install() -> None:
    """Point the engine's folders at ComfyUI's (called once when the pack is imported), and
    add the pack's shipped demo models to ComfyUI's `diffusers` and `loras` search paths
    (after the user's own folders) so they appear in the loaders' lists."""
    modules = comfy_modules()
    if modules is None:
        return
    folder_paths = modules["folder_paths"]
    paths = engine("paths")
    for kind in SHIPPED_KINDS:
        shipped = paths.PACK_MODELS_DIR / kind
        if shipped.is_dir() and hasattr(folder_paths, "add_model_folder_path"):
            folder_paths.add_model_folder_path(kind, str(shipped))
    paths.configure(ComfyFolders(folder_paths))


def run(fn: Callable[..., Any], *args: Any, preview: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
    """Call an engine function with the host's progress and interruption wiring.

    Headless, the caller (the graph runner) has already installed its reporter. Inside
    ComfyUI, an engine `Interrupted` becomes ComfyUI's own interrupt exception so the
    queue shows the run as interrupted rather than failed.
    """
    modules = comfy_modules()
    if modules is None:
        return fn(*args, **kwargs)
    progress = engine("progress")
    errors = engine("errors")
    with progress.use(ComfyReporter(modules, preview)):
        try:
            return fn(*args, **kwargs)
        except errors.Interrupted:
            mm = modules["model_management"]
            if mm is not None:
                mm.throw_exception_if_processing_interrupted()
            raise
