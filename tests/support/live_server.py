"""Start `lcm-run serve`'s application on a free loopback port in a background thread.

The server gets its own event loop (as in production, the worker is a further thread),
so tests can talk to it with any client: aiohttp, urllib, a third-party ComfyUI client
or a browser.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from lcm_core import paths
from lcm_core.server.background import BackgroundServer
from lcm_core.server.state import ServerOptions, ServerState


class LiveServer(BackgroundServer):
    """A running server for tests: `url`, `state`, `get_json(path)`; `stop()` ends it."""

    def __init__(self, node_classes: dict, display_names: dict | None = None, *, user_dir: Path,
                 frontend_root: Path | None = None, max_upload_mb: float = 1.0, preview_method: str = "auto"):
        options = ServerOptions(port=0, max_upload_mb=max_upload_mb, user_dir=user_dir, frontend_root=frontend_root,
                                preview_method=preview_method)
        super().__init__(ServerState(node_classes, display_names or {}, options))

    def get_json(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())


def serve_folders(tmp_path: Path) -> paths.LocalFolders:
    """Headless folders under `tmp_path` (models, input, output, temp), configured globally."""
    local = paths.LocalFolders(models_dir=tmp_path / "models", input_dir=tmp_path / "input",
                               output_dir=tmp_path / "output", temp_dir=tmp_path / "temp")
    for folder in (local.input_dir, local.output_dir, local.temp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    paths.configure(local)
    return local


FINAL_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")


async def follow(ws, prompt_id: str, timeout: float = 60.0) -> tuple[list[dict], list[bytes]]:
    """Read WebSocket messages until `prompt_id` is done (its `executing: null`, sent once
    the history holds it): (JSON messages in order, binary frames)."""
    import aiohttp

    messages, frames = [], []
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.BINARY:
            frames.append(msg.data)
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"WebSocket closed: {msg}")
        data = json.loads(msg.data)
        messages.append(data)
        if data["type"] == "executing" and data["data"]["node"] is None and data["data"].get("prompt_id") == prompt_id:
            assert any(m["type"] in FINAL_MESSAGES for m in messages), messages
            return messages, frames


async def next_json(ws, timeout: float = 30.0) -> dict:
    """The next JSON WebSocket message, skipping binary preview frames."""
    import aiohttp

    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise AssertionError(f"WebSocket closed: {msg}")
