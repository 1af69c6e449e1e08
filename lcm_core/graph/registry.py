"""The node classes the headless runner knows.

Installed from the wheel, the node layer is the top-level package `lcm_nodes`. Run from
a checkout (or a ComfyUI `custom_nodes/` clone), the repo's `nodes/` folder is loaded by
path under that same module name, so nothing edits `sys.path`. Importing the node layer
is cheap (no torch), which keeps `lcm-run --list-nodes` fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..errors import LCMError

MODULE_NAME = "lcm_nodes"
REPO_NODES = Path(__file__).resolve().parents[2] / "nodes"


def node_package() -> ModuleType:
    """The imported node layer: installed `lcm_nodes`, else the repo's `nodes/` folder."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    if importlib.util.find_spec(MODULE_NAME) is not None:
        return importlib.import_module(MODULE_NAME)
    init = REPO_NODES / "__init__.py"
    if not init.is_file():
        raise LCMError("the node classes are not installed",
                       details=f"Neither the package 'lcm_nodes' nor {init} exists; reinstall comfyui-lcm.")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, init, submodule_search_locations=[str(REPO_NODES)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[MODULE_NAME]
        raise
    return module


def node_classes() -> dict[str, type]:
    """`NODE_CLASS_MAPPINGS` of the node layer (headless: includes LoadImage, SaveImage, ...)."""
    return dict(node_package().NODE_CLASS_MAPPINGS)


def display_names() -> dict[str, str]:
    """`NODE_DISPLAY_NAME_MAPPINGS` of the node layer."""
    return dict(node_package().NODE_DISPLAY_NAME_MAPPINGS)
