"""`lcm-run serve`: ComfyUI's HTTP + WebSocket API (and its editor, with `[ui]`) on this engine."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from .. import paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lcm-run serve",
        description="Serve ComfyUI's API (and, with the [ui] extra, its node editor) for comfyui-lcm's nodes.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8188, help="port (default 8188; 0 picks a free one)")
    parser.add_argument("--models-dir", type=Path, help="folder with checkpoints/, loras/, ... "
                        "(default: $LCM_MODELS_DIR, a ComfyUI install's models/, or the pack's models/)")
    parser.add_argument("--input-dir", type=Path, help="uploads and LoadImage files (default ./input)")
    parser.add_argument("--output-dir", type=Path, help="saved images (default ./output)")
    parser.add_argument("--temp-dir", type=Path, help="preview images (default ./temp)")
    parser.add_argument("--user-dir", type=Path, help="editor settings and saved workflows (default ./user)")
    parser.add_argument("--max-upload-size", type=float, default=100.0, metavar="MB",
                        help="largest request body in MB (default 100)")
    parser.add_argument("--preview-method", choices=("auto", "latent2rgb", "none"), default="auto",
                        help="latent previews over the WebSocket: auto = to the editor only (default), "
                        "latent2rgb = to every client, none = never")
    parser.add_argument("--no-frontend", action="store_true", help="serve the API only, not the editor")
    return parser


def make_state(args: argparse.Namespace, node_classes: dict | None = None, display_names: dict | None = None):
    """Configure the folders and build the server state for parsed `args`."""
    from ..graph.registry import display_names as registry_names
    from ..graph.registry import node_classes as registry_classes
    from .frontend import find_frontend
    from .state import ServerOptions, ServerState

    paths.configure(paths.LocalFolders(
        models_dir=args.models_dir or paths.default_models_dir(), input_dir=args.input_dir,
        output_dir=args.output_dir, temp_dir=args.temp_dir))
    options = ServerOptions(host=args.host, port=args.port, max_upload_mb=args.max_upload_size,
                            preview_method=args.preview_method,
                            user_dir=args.user_dir, frontend_root=None if args.no_frontend else find_frontend())
    return ServerState(node_classes if node_classes is not None else registry_classes(),
                       display_names if display_names is not None else registry_names(), options)


async def _serve(app, host: str, port: int, editor: bool) -> None:
    """Run `app` until cancelled, printing the address actually bound (port 0 picks one)."""
    import asyncio

    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
    what = "editor and API" if editor else "API only (pip install comfyui-lcm[ui] for the editor)"
    print(f"lcm-run serve: {what} on http://{host}:{bound}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until Ctrl-C."""
    import asyncio

    from .app import build_app

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    state = make_state(args)
    try:
        asyncio.run(_serve(build_app(state), args.host, args.port, state.options.frontend_root is not None))
    except KeyboardInterrupt:
        pass
    return 0
