"""What the server's routes share: node classes, the queue and its worker, the WebSocket hub."""

from __future__ import annotations

import glob
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from .hub import Hub
from .queue import PromptQueue, Worker

PACK_NAME = "comfyui-lcm"
PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_WEB_DIR = PACK_ROOT / "web"
PACK_WORKFLOWS_DIR = PACK_ROOT / "workflows"
CORE_MODULE_PREFIXES = ("lcm_nodes.io", "nodes.io")


@dataclass
class ServerOptions:
    """How `lcm-run serve` was started."""

    host: str = "127.0.0.1"
    port: int = 8188
    max_upload_mb: float = 100.0
    preview_method: str = "auto"
    user_dir: Path | None = None
    frontend_root: Path | None = None
    web_dirs: dict = field(default_factory=lambda: {PACK_NAME: PACK_WEB_DIR})
    workflow_dirs: dict = field(default_factory=lambda: {PACK_NAME: PACK_WORKFLOWS_DIR})


class ServerState:
    """The queue, worker and hub of one server, and the node classes they serve."""

    def __init__(self, node_classes: dict[str, type], display_names: dict[str, str], options: ServerOptions,
                 version: str = ""):
        self.node_classes = dict(node_classes)
        self.display_names = dict(display_names)
        self.options = options
        self.version = version or _version()
        self.max_upload_size = int(options.max_upload_mb * 1024 * 1024)
        self._number = 0
        self._number_lock = threading.Lock()
        self.hub = Hub(self.queue_info, options.preview_method)
        self.queue = PromptQueue(on_change=self.hub.queue_changed)
        self.worker = Worker(self.queue, self.node_classes, self.hub.send_sync, preview=self.hub.send_preview)
        self.hub.current = lambda: (self.worker.client_id, self.worker.last_node)

    def queue_info(self) -> dict:
        """ComfyUI's `status` payload."""
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    def next_number(self, front: bool = False) -> int:
        """The queue number of a new prompt (negative to jump the queue)."""
        with self._number_lock:
            number = self._number
            self._number += 1
        return -number if front else number

    @staticmethod
    def python_module(cls: type) -> str:
        """`nodes` for the headless stand-ins of ComfyUI's core nodes, else the pack's module."""
        if cls.__module__.startswith(CORE_MODULE_PREFIXES):
            return "nodes"
        return f"custom_nodes.{PACK_NAME}"

    def web_dirs(self) -> dict[str, Path]:
        """Extension folders served under `/extensions/<name>/`, those that exist."""
        return {name: Path(d) for name, d in self.options.web_dirs.items() if Path(d).is_dir()}

    def example_workflows(self) -> dict[str, list[str]]:
        """UI-format example workflows by pack (the editor's custom-node templates)."""
        return {name: sorted(p.stem for p in Path(folder).glob("*.json"))
                for name, folder in self.options.workflow_dirs.items() if Path(folder).is_dir()}

    def extension_scripts(self) -> list[str]:
        """`/extensions`: the frontend's core extension scripts and every pack's `.js` files."""
        found = []
        root = self.options.frontend_root
        if root is not None:
            for path in sorted(glob.glob(str(Path(glob.escape(str(root))) / "extensions" / "**" / "*.js"),
                                         recursive=True)):
                found.append("/" + Path(path).relative_to(root).as_posix())
        for name, folder in self.web_dirs().items():
            for path in sorted(folder.rglob("*.js")):
                found.append(f"/extensions/{urllib.parse.quote(name)}/{path.relative_to(folder).as_posix()}")
        return found


def _version() -> str:
    from .. import __version__

    return __version__
