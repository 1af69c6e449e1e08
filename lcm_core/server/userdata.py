"""What ComfyUI's editor stores on the server: settings and user files (saved workflows).

One user, `default`, whose files live under `<user_dir>/default/` (ComfyUI's layout, so a
ComfyUI user folder can be pointed at). Every path stays inside that folder.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from pathlib import Path

from aiohttp import web

from .state import ServerState

log = logging.getLogger(__name__)

USER = "default"
SETTINGS_FILE = "comfy.settings.json"
USER_FOLDERS = ("workflows", "subgraphs")  # the editor lists these at start


def user_root(state: ServerState) -> Path:
    """`<user_dir>/default`, created on first use."""
    root = Path(state.options.user_dir or Path.cwd() / "user") / USER
    for folder in USER_FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


def inside(root: Path, relative: str) -> Path:
    """`root/relative`, refusing absolute names, `..` and symlinks that lead out (403)."""
    relative = urllib.parse.unquote(relative).replace("\\", "/")
    if not relative or "\x00" in relative or relative.startswith("/") or ".." in relative.split("/") \
            or (len(relative) > 1 and relative[1] == ":"):
        raise web.HTTPForbidden(text="the path must stay inside the user folder")
    path = root / relative
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise web.HTTPForbidden(text="the path must stay inside the user folder")
    return path


def _file_info(path: Path, root: Path) -> dict:
    stat = path.stat()
    return {"path": path.relative_to(root).as_posix(), "size": stat.st_size, "modified": stat.st_mtime,
            "created": stat.st_ctime}


def _thumbnail(title: str) -> bytes:
    """A plain 256x256 card naming the workflow, for templates that ship no picture."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (256, 256), (32, 36, 44))
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 16, 240, 240), outline=(58, 142, 230), width=3)
    draw.text((32, 112), "LCM", fill=(230, 162, 58))
    draw.text((32, 136), title.replace("_", " ")[:30], fill=(220, 220, 220))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def load_settings(state: ServerState) -> dict:
    path = user_root(state) / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_settings(state: ServerState, settings: dict) -> None:
    (user_root(state) / SETTINGS_FILE).write_text(json.dumps(settings, indent=4), encoding="utf-8")


def add_routes(routes: web.RouteTableDef, state: ServerState) -> None:
    """Settings, users and userdata routes, as ComfyUI's `app/user_manager.py` answers them."""
    from .api import read_json, read_json_object

    @routes.get("/settings")
    async def get_settings(request):
        return web.json_response(load_settings(state))

    @routes.get("/settings/{id}")
    async def get_setting(request):
        return web.json_response(load_settings(state).get(request.match_info["id"]))

    @routes.post("/settings")
    async def post_settings(request):
        update = await read_json_object(request)
        save_settings(state, {**load_settings(state), **update})
        return web.Response(status=200)

    @routes.post("/settings/{id}")
    async def post_setting(request):
        value = await read_json(request)
        settings = load_settings(state)
        settings[request.match_info["id"]] = value
        save_settings(state, settings)
        return web.Response(status=200)

    @routes.get("/users")
    async def get_users(request):
        return web.json_response({"storage": "server", "migrated": True})

    @routes.post("/users")
    async def post_users(request):
        raise web.HTTPBadRequest(text="this server has a single user")

    @routes.get("/userdata")
    async def list_userdata(request):
        query = request.rel_url.query
        directory = query.get("dir", "")
        if not directory:
            raise web.HTTPBadRequest(text="Directory not provided")
        root = user_root(state)
        folder = inside(root, directory)
        if not folder.is_dir():
            raise web.HTTPNotFound(text="Directory not found")
        pattern = "**/*" if query.get("recurse", "").lower() == "true" else "*"
        full_info = query.get("full_info", "").lower() == "true"
        split = query.get("split", "").lower() == "true"
        out = []
        for path in sorted(folder.glob(pattern)):
            if not path.is_file():
                continue
            if full_info:
                out.append(_file_info(path, folder))
            else:
                rel = path.relative_to(folder).as_posix()
                out.append([rel, *rel.split("/")] if split else rel)
        return web.json_response(out)

    @routes.get("/v2/userdata")
    async def list_userdata_v2(request):
        root = user_root(state)
        wanted = request.rel_url.query.get("path", "")
        folder = inside(root, wanted) if wanted else root
        if not folder.exists():
            raise web.HTTPNotFound(text="Requested path not found")
        if not folder.is_dir():
            raise web.HTTPBadRequest(text="Requested path is not a directory")
        out = []
        for path in folder.rglob("*"):
            entry = {"name": path.name, "path": path.relative_to(root).as_posix(),
                     "type": "directory" if path.is_dir() else "file"}
            if path.is_file():
                stat = path.stat()
                entry.update(size=stat.st_size, modified=stat.st_mtime)
            out.append(entry)
        out.sort(key=lambda e: (e["type"] != "directory", e["name"].lower()))
        return web.json_response(out)

    @routes.get("/userdata/{file}")
    async def get_userdata(request):
        path = inside(user_root(state), request.match_info["file"])
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"}
                                if path.suffix not in (".json", ".txt") else None)

    @routes.post("/userdata/{file}")
    async def post_userdata(request):
        root = user_root(state)
        path = inside(root, request.match_info["file"])
        if request.query.get("overwrite", "true") == "false" and path.exists():
            raise web.HTTPConflict(text="File already exists")
        body = await request.read()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            inside(root, request.match_info["file"])
            path.write_bytes(body)
        except OSError as ex:
            raise web.HTTPBadRequest(text=f"cannot write {path.name}: {ex.strerror}") from None
        full = request.query.get("full_info", "false").lower() == "true"
        return web.json_response(_file_info(path, root) if full else path.relative_to(root).as_posix())

    @routes.delete("/userdata/{file}")
    async def delete_userdata(request):
        path = inside(user_root(state), request.match_info["file"])
        if not path.is_file():
            raise web.HTTPNotFound()
        path.unlink()
        return web.Response(status=204)

    @routes.post("/userdata/{file}/move/{dest}")
    async def move_userdata(request):
        root = user_root(state)
        source = inside(root, request.match_info["file"])
        dest = inside(root, request.match_info["dest"])
        if not source.is_file():
            raise web.HTTPNotFound()
        if request.query.get("overwrite", "true") == "false" and dest.exists():
            raise web.HTTPConflict(text="File already exists")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, dest)
        full = request.query.get("full_info", "false").lower() == "true"
        return web.json_response(_file_info(dest, root) if full else dest.relative_to(root).as_posix())

    @routes.get("/i18n")
    async def i18n(request):
        return web.json_response({})

    @routes.get("/workflow_templates")
    async def workflow_templates(request):
        """The pack's example workflows, which the editor lists as templates."""
        return web.json_response({name: names for name, names in state.example_workflows().items() if names})

    @routes.get("/workflow_templates/{pack}/{file}")
    async def workflow_template(request):
        """An example workflow (`<name>.json`) or its thumbnail (`<name>.jpg`, drawn when not shipped)."""
        folder = state.options.workflow_dirs.get(request.match_info["pack"])
        name = request.match_info["file"]
        if folder is None or "/" in name or "\\" in name or name.startswith("."):
            raise web.HTTPNotFound()
        path = Path(folder) / name
        if path.is_file() and path.suffix in (".json", ".jpg", ".webp", ".png"):
            return web.FileResponse(path)
        if path.suffix == ".jpg" and path.with_suffix(".json").is_file():
            return web.Response(body=_thumbnail(path.stem), content_type="image/jpeg")
        raise web.HTTPNotFound()

    @routes.get("/experiment/models")
    async def model_folders(request):
        from .. import paths

        return web.json_response([{"name": kind, "folders": [str(f) for f in paths.folders(kind)]}
                                  for kind in paths.MODEL_KINDS])
