"""Import the pack the way ComfyUI does, with minimal stand-ins for ComfyUI's modules.

ComfyUI loads a custom node folder with `spec_from_file_location(<folder path with "."
replaced by "_x_">, <folder>/__init__.py)` after it has imported `folder_paths`, `comfy.utils`,
`comfy.model_management` and `server`. `load_pack(...)` reproduces that, so the node
layer's behaviour inside a host is tested without ComfyUI.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

PACK_ROOT = Path(__file__).resolve().parents[2]
STANDIN_NAMES = ("folder_paths", "comfy", "comfy.utils", "comfy.model_management", "server")


class InterruptProcessingException(Exception):
    """ComfyUI's interrupt exception (comfy.model_management)."""


@dataclass
class HostRecord:
    """What the pack did to the stand-in host: progress updates, messages sent."""

    progress: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    interrupt: bool = False


def _folder_paths(models_dir: Path, input_dir: Path, output_dir: Path, temp_dir: Path) -> types.ModuleType:
    mod = types.ModuleType("folder_paths")
    kinds = ("checkpoints", "loras", "vae", "diffusers", "embeddings", "configs", "clip")
    exts = {".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin"}
    mod.supported_pt_extensions = exts
    mod.folder_names_and_paths = {k: ([str(models_dir / k)], exts) for k in kinds}
    mod.models_dir = str(models_dir)

    def get_folder_paths(name):
        return list(mod.folder_names_and_paths[name][0])

    def get_filename_list(name):
        out = set()
        for root in get_folder_paths(name):
            root = Path(root)
            if root.is_dir():
                out.update(p.relative_to(root).as_posix() for p in root.rglob("*")
                           if p.is_file() and p.suffix in mod.folder_names_and_paths[name][1])
        return sorted(out)

    def get_full_path(name, filename):
        for root in get_folder_paths(name):
            path = Path(root) / filename
            if path.is_file():
                return str(path)
        return None

    def get_full_path_or_raise(name, filename):
        path = get_full_path(name, filename)
        if path is None:
            raise FileNotFoundError(f"Model in folder '{name}' with filename '{filename}' not found.")
        return path

    def add_model_folder_path(name, path, is_default=False):
        roots = mod.folder_names_and_paths.setdefault(name, ([], set()))[0]
        if path not in roots:
            roots.insert(0, path) if is_default else roots.append(path)

    mod.get_folder_paths = get_folder_paths
    mod.add_model_folder_path = add_model_folder_path
    mod.get_filename_list = get_filename_list
    mod.get_full_path = get_full_path
    mod.get_full_path_or_raise = get_full_path_or_raise
    mod.get_input_directory = lambda: str(input_dir)
    mod.get_output_directory = lambda: str(output_dir)
    mod.get_temp_directory = lambda: str(temp_dir)
    return mod


def _comfy(record: HostRecord) -> dict[str, types.ModuleType]:
    comfy = types.ModuleType("comfy")
    comfy.__path__ = []
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total, node_id=None):
            self.total = total
            self.current = 0

        def update_absolute(self, value, total=None, preview=None):
            if total is not None:
                self.total = total
            self.current = value
            record.progress.append((value, self.total, preview))

        def update(self, value):
            self.update_absolute(self.current + value, self.total)

    utils.ProgressBar = ProgressBar
    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = InterruptProcessingException

    def processing_interrupted():
        return record.interrupt

    def throw_exception_if_processing_interrupted():
        if record.interrupt:
            record.interrupt = False
            raise InterruptProcessingException()

    def interrupt_current_processing(value=True):
        record.interrupt = value

    mm.processing_interrupted = processing_interrupted
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    mm.interrupt_current_processing = interrupt_current_processing
    mm.get_torch_device = lambda: __import__("torch").device("cpu")
    comfy.utils = utils
    comfy.model_management = mm
    server = types.ModuleType("server")

    class PromptServer:
        instance = None

        def send_sync(self, event, data, sid=None):
            record.messages.append((event, data, sid))

    PromptServer.instance = PromptServer()
    server.PromptServer = PromptServer
    return {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm, "server": server}


def _forget_pack(name: str) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


@contextmanager
def comfy_host(tmp: Path, pack_root: Path = PACK_ROOT, module_name: str | None = None) -> Iterator[tuple]:
    """Stand-in ComfyUI with folders under `tmp`; yields `(pack_module, record, folders)`.

    The pack is imported fresh under its folder's name and removed again afterwards,
    with every stand-in module, so tests cannot leak into each other.
    """
    record = HostRecord()
    dirs = {k: tmp / k for k in ("models", "input", "output", "temp")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    saved = {k: sys.modules.get(k) for k in STANDIN_NAMES}
    name = module_name or comfy_module_name(pack_root)
    sys.modules["folder_paths"] = _folder_paths(dirs["models"], dirs["input"], dirs["output"], dirs["temp"])
    sys.modules.update(_comfy(record))
    _forget_pack(name)
    try:
        yield import_pack(pack_root, name), record, dirs
    finally:
        _forget_pack(name)
        for key, mod in saved.items():
            if mod is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = mod
        from lcm_core import paths

        paths.configure(None)


def comfy_module_name(pack_root: Path) -> str:
    """The `sys.modules` name ComfyUI gives a custom node folder: its path, dots escaped."""
    return str(pack_root).replace(".", "_x_")


def import_pack(pack_root: Path = PACK_ROOT, module_name: str | None = None) -> types.ModuleType:
    """Import the pack folder exactly as ComfyUI's `load_custom_node` does."""
    name = module_name or comfy_module_name(pack_root)
    spec = importlib.util.spec_from_file_location(name, pack_root / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
