"""`/view` and `/upload/image`: files inside the input, output and temp folders only.

Every name goes through `lcm_core.paths.resolve`, which refuses absolute names, `..`
and symlinks that lead out of the folder.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
from pathlib import Path

from aiohttp import web

from .. import paths
from ..errors import LCMError, PathEscapeError

FOLDER_TYPES = ("input", "output", "temp")
UNSAFE_TYPES = {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css",
                "image/svg+xml", "application/javascript"}


def _split_annotation(filename: str) -> tuple[str, str | None]:
    """ComfyUI's `name.png [output]` annotation → (name, folder type)."""
    for kind in FOLDER_TYPES:
        suffix = f" [{kind}]"
        if filename.endswith(suffix):
            return filename[: -len(suffix)], kind
    return filename, None


def safe_path(kind: str, subfolder: str, filename: str, *, must_exist: bool) -> Path:
    """The path of `subfolder/filename` inside `kind`'s folder; raises `web.HTTPException` otherwise."""
    if kind not in FOLDER_TYPES:
        raise web.HTTPBadRequest(text=f"unknown folder type {kind!r}; use one of {', '.join(FOLDER_TYPES)}")
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename or "\x00" in filename:
        raise web.HTTPBadRequest(text="a plain file name is required")
    subfolder = subfolder.replace("\\", "/")
    if "\x00" in subfolder or subfolder.startswith("/") or (len(subfolder) > 1 and subfolder[1] == ":"):
        raise web.HTTPForbidden(text="the subfolder must be relative to the folder")
    name = f"{subfolder.strip('/')}/{filename}" if subfolder.strip("/") else filename
    paths.io_dir(kind)
    try:
        return paths.resolve(kind, name, must_exist=must_exist)
    except PathEscapeError as ex:
        raise web.HTTPForbidden(text=ex.message) from None
    except LCMError as ex:
        raise web.HTTPNotFound(text=ex.message) from None


async def view(request: web.Request) -> web.StreamResponse:
    """`GET /view?filename=&subfolder=&type=&preview=&channel=`."""
    query = request.rel_url.query
    if "filename" not in query:
        raise web.HTTPNotFound()
    filename, annotated = _split_annotation(query["filename"])
    kind = annotated or query.get("type", "output") or "output"
    path = safe_path(kind, query.get("subfolder", ""), filename, must_exist=True)
    if not path.is_file():
        raise web.HTTPNotFound()
    headers = {"Content-Disposition": f'filename="{path.name}"'}
    preview, channel = query.get("preview"), query.get("channel", "")
    if preview is not None or channel in ("rgb", "a"):
        return web.Response(body=_converted(path, preview, channel), headers=headers,
                            content_type=_converted_type(preview, channel))
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type in UNSAFE_TYPES:
        content_type = "application/octet-stream"
    return web.FileResponse(path, headers={**headers, "Content-Type": content_type})


def _converted_type(preview: str | None, channel: str) -> str:
    if preview is not None:
        fmt = preview.split(";")[0]
        return f"image/{fmt if fmt in ('webp', 'jpeg') and 'a' not in channel else 'webp'}"
    return "image/png"


def _converted(path: Path, preview: str | None, channel: str) -> bytes:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            out = io.BytesIO()
            if preview is not None:
                parts = preview.split(";")
                fmt = parts[0] if parts[0] in ("webp", "jpeg") and "a" not in channel else "webp"
                quality = int(parts[-1]) if parts[-1].isdigit() else 90
                if fmt == "jpeg" or channel == "rgb":
                    img = img.convert("RGB")
                img.save(out, format=fmt, quality=min(max(quality, 1), 100))
            elif channel == "rgb":
                img.convert("RGB").save(out, format="PNG")
            else:
                alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
                layer = Image.new("RGBA", img.size)
                layer.putalpha(alpha)
                layer.save(out, format="PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError) as ex:
        raise web.HTTPBadRequest(text=f"{path.name} is not an image: {ex}") from None


def _free_name(folder: Path, filename: str) -> Path:
    stem, suffix = Path(filename).stem, Path(filename).suffix
    n = 1
    candidate = folder / filename
    while candidate.exists():
        candidate = folder / f"{stem} ({n}){suffix}"
        n += 1
    return candidate


async def upload_image(request: web.Request) -> web.Response:
    """`POST /upload/image` (multipart `image`, `overwrite`, `subfolder`, `type`)."""
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text="expected multipart/form-data with an 'image' field")
    try:
        post = await request.post()
    except ValueError as ex:
        raise web.HTTPBadRequest(text=f"malformed form: {ex}") from None
    image = post.get("image")
    if not isinstance(image, web.FileField) or not image.filename:
        raise web.HTTPBadRequest(text="the 'image' field must be a file with a name")
    kind = str(post.get("type") or "input")
    subfolder = str(post.get("subfolder") or "")
    overwrite = str(post.get("overwrite", "")).lower() in ("true", "1")
    filename = Path(image.filename.replace("\\", "/")).name
    data = image.file.read()
    target = safe_path(kind, subfolder, filename, must_exist=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    safe_path(kind, subfolder, filename, must_exist=False)  # re-check now that the folder exists
    if target.exists() and not overwrite:
        if hashlib.sha256(target.read_bytes()).digest() != hashlib.sha256(data).digest():
            target = _free_name(target.parent, filename)
    if target.is_symlink():
        raise web.HTTPForbidden(text="refusing to write through a symlink")
    target.write_bytes(data)
    return web.json_response({"name": target.name, "subfolder": subfolder, "type": kind})
