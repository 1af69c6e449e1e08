"""Serve ComfyUI's official editor (the `comfyui-frontend-package` wheel, extra `[ui]`) at `/`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

from .state import ServerState

NO_FRONTEND = """<!doctype html><title>lcm-run serve</title>
<h1>lcm-run serve</h1><p>The ComfyUI API is up (<a href="/object_info">/object_info</a>,
<code>POST /prompt</code>, <code>/ws</code>). The node editor is not installed:
<code>pip install "comfyui-lcm[ui]"</code> (or <code>pip install comfyui-frontend-package</code>)
and restart.</p>"""


def find_frontend() -> Path | None:
    """The static folder of the installed `comfyui_frontend_package`, without importing it."""
    spec = importlib.util.find_spec("comfyui_frontend_package")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "index.html").is_file() else None


def add_routes(app: web.Application, state: ServerState) -> None:
    """`/` → the editor's index.html (or a note on how to install it), and its static files."""
    root = state.options.frontend_root

    async def index(request: web.Request) -> web.StreamResponse:
        if root is None:
            return web.Response(text=NO_FRONTEND, content_type="text/html")
        return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    async def no_templates(request: web.Request) -> web.Response:
        return web.json_response([])

    app.router.add_get("/", index)
    if root is not None:
        app.router.add_get("/templates/index.json", no_templates)  # ComfyUI's template pack is not ours to ship
        app.router.add_static("/", root, follow_symlinks=False)
