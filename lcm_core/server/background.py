"""Run the server inside another Python process: on its own event loop in a thread.

For embedding `lcm-run serve` in a script or a test, and for the soak benchmark: the
caller keeps its own thread, talks to `url` with any client, and calls `stop()`.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from .app import build_app
from .state import ServerState


class BackgroundServer:
    """`state`'s app on `host` (a free port unless `port` is given); `url`, `stop()`."""

    def __init__(self, state: ServerState, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0):
        self.state, self.host, self.port = state, host, port
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="lcm-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout) or self.error is not None:
            raise RuntimeError(f"server did not start: {self.error}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as ex:  # reported to the starting thread
            self.error = ex
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(build_app(self.state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving and wait for the loop to close."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
