"""Find the engine package from the node layer.

Inside ComfyUI this folder is the `nodes` subpackage of the pack, with `lcm_core`
beside it. Installed from the wheel it is the top-level package `lcm_nodes` and the
engine is the top-level `lcm_core`. Node modules reach the engine only through `engine()`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

try:
    from .. import lcm_core as core
except ImportError:  # installed as `lcm_nodes`: there is no parent package
    import lcm_core as core


def engine(submodule: str) -> ModuleType:
    """The engine module `lcm_core.<submodule>`, imported on first use (keeps import cheap)."""
    return importlib.import_module(f"{core.__name__}.{submodule}")
