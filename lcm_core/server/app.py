"""The aiohttp application of `lcm-run serve`: ComfyUI's API, WebSocket and (optionally) its editor."""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse

from aiohttp import web

from . import api, files, frontend, userdata
from .state import ServerState

log = logging.getLogger(__name__)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@web.middleware
async def same_origin_only(request: web.Request, handler):
    """Refuse cross-site requests to a loopback server (another web page POSTing to 127.0.0.1),
    the check ComfyUI makes: the Origin's host must match the Host header."""
    host, origin = request.headers.get("Host"), request.headers.get("Origin")
    if host and origin:
        host_parts = urllib.parse.urlsplit("//" + host.lower())
        origin_parts = urllib.parse.urlsplit(origin.lower())
        if _is_loopback(host_parts.hostname):
            if origin_parts.port is None or host_parts.port is None:
                same = host_parts.hostname == origin_parts.hostname
            else:
                same = host_parts.netloc == origin_parts.netloc
            if not same:
                return web.Response(status=403, text="cross-origin request refused")
    return await handler(request)


@web.middleware
async def errors_as_responses(request: web.Request, handler):
    """A bug in one handler answers 500 and leaves the server serving."""
    try:
        return await handler(request)
    except (web.HTTPException, ConnectionError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal server error"}, status=500)


@web.middleware
async def no_cache_for_api(request: web.Request, handler):
    response = await handler(request)
    if request.path.endswith((".js", ".css", ".html", "/")) or request.path.endswith("index.json"):
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


def build_app(state: ServerState) -> web.Application:
    """The application: API routes (also under `/api`), `/ws`, extension files and the editor."""
    app = web.Application(client_max_size=state.max_upload_size,
                          middlewares=[same_origin_only, errors_as_responses, no_cache_for_api])
    routes = web.RouteTableDef()
    routes.get("/ws")(state.hub.handle)
    routes.get("/view")(files.view)
    routes.post("/upload/image")(files.upload_image)
    api.add_routes(routes, state)
    userdata.add_routes(routes, state)
    prefixed = web.RouteTableDef()
    for route in routes:
        if isinstance(route, web.RouteDef):
            prefixed.route(route.method, "/api" + route.path)(route.handler, **route.kwargs)
    app.add_routes(prefixed)
    app.add_routes(routes)
    for name, folder in state.web_dirs().items():
        app.add_routes([web.static(f"/extensions/{name}", folder)])
    frontend.add_routes(app, state)

    async def on_startup(app: web.Application) -> None:
        await state.hub.start()
        state.worker.start()

    async def on_cleanup(app: web.Application) -> None:
        state.worker.stop()
        await state.hub.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
