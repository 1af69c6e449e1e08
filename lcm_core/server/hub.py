"""WebSocket clients and the messages sent to them, as ComfyUI's `PromptServer` does.

JSON messages are `{"type": name, "data": {...}}`; binary frames are a 4-byte
big-endian event type followed by the payload. Latent previews use event type 1
(`PREVIEW_IMAGE`) whose payload is a 4-byte image type (1 = JPEG) and the JPEG bytes.
The worker thread calls `send_sync`; one task on the event loop delivers in order.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import struct
import uuid
from typing import Any, Callable

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

PREVIEW_IMAGE = 1
JPEG = 1
PREVIEW_MAX_SIZE = 512
PREVIEW_METHODS = ("auto", "latent2rgb", "none")
# SD1.x latent → RGB factors (ComfyUI's Latent2RGB preview for SD1.5).
LATENT_RGB_FACTORS = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350),
                      (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))


def encode_binary(event: int, payload: bytes) -> bytes:
    """A binary frame: big-endian event type, then the payload."""
    return struct.pack(">I", event) + payload


def latent_preview_jpeg(latent: Any, max_size: int = PREVIEW_MAX_SIZE) -> bytes | None:
    """JPEG of the first latent in a batch through the linear latent→RGB map; None if not a 4-channel latent."""
    import torch
    from PIL import Image, ImageOps

    if not isinstance(latent, torch.Tensor) or latent.ndim != 4 or latent.shape[1] != 4:
        return None
    factors = torch.tensor(LATENT_RGB_FACTORS, dtype=torch.float32)
    rgb = latent[0].detach().float().cpu().permute(1, 2, 0) @ factors
    pixels = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    image = ImageOps.contain(Image.fromarray(pixels), (max_size, max_size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


class Hub:
    """The connected WebSockets by client id, and an ordered outbox fed from any thread."""

    def __init__(self, status: Callable[[], dict], preview_method: str = "auto"):
        if preview_method not in PREVIEW_METHODS:
            raise ValueError(f"preview method {preview_method!r}: use one of {', '.join(PREVIEW_METHODS)}")
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.flagged: set[str] = set()  # clients that sent `feature_flags` (ComfyUI's editor does)
        self.preview_method = preview_method
        self.current: Callable[[], tuple[str | None, str | None]] = lambda: (None, None)  # (client, running node)
        self.status = status
        self.loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self._task = asyncio.create_task(self._publish())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for ws in list(self.sockets.values()):
            await ws.close()

    def send_sync(self, event: str | int, data: Any, sid: str | None = None) -> None:
        """Queue a message from any thread (`sid` None: every client)."""
        if self.loop is None or self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self._outbox.put_nowait, (event, data, sid))
        except RuntimeError:  # loop shutting down
            pass

    def preview_targets(self, sid: str | None) -> list[str]:
        """Who gets latent previews of a prompt from client `sid`: `none` nobody, `latent2rgb`
        everyone concerned, `auto` only clients that announced feature flags (the editor), so
        scripts that read every binary frame as an output image see none, as with ComfyUI's default."""
        if self.preview_method == "none":
            return []
        concerned = [sid] if sid is not None else list(self.sockets)
        return [c for c in concerned if c in self.sockets and (self.preview_method == "latent2rgb" or c in self.flagged)]

    def send_preview(self, latent: Any, sid: str | None = None) -> None:
        """Encode a latent preview (in the calling thread) and queue it as a binary frame."""
        targets = self.preview_targets(sid)
        if not targets:
            return
        jpeg = latent_preview_jpeg(latent)
        if jpeg is not None:
            for target in targets:
                self.send_sync(PREVIEW_IMAGE, struct.pack(">I", JPEG) + jpeg, target)

    def queue_changed(self) -> None:
        """Broadcast the queue size (`status`), as ComfyUI does on every change."""
        self.send_sync("status", {"status": self.status()})

    async def send(self, event: str | int, data: Any, sid: str | None = None) -> None:
        if isinstance(event, int):
            message, method = encode_binary(event, data), "send_bytes"
        else:
            message, method = json.dumps({"type": event, "data": data}), "send_str"
        targets = list(self.sockets.values()) if sid is None else [self.sockets[sid]] if sid in self.sockets else []
        for ws in targets:
            try:
                await getattr(ws, method)(message)
            except (ConnectionError, RuntimeError) as ex:
                log.debug("dropping a message to a closed socket: %s", ex)

    async def _publish(self) -> None:
        while True:
            event, data, sid = await self._outbox.get()
            try:
                await self.send(event, data, sid)
            except Exception:  # one bad message must not stop delivery
                log.exception("could not deliver %s", event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """`GET /ws?clientId=`: register, send `status`, then read and ignore client messages
        (except the `feature_flags` handshake, answered as ComfyUI does)."""
        ws = web.WebSocketResponse(max_msg_size=1 << 20, heartbeat=30)
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")[:128] or uuid.uuid4().hex
        old = self.sockets.pop(sid, None)
        self.flagged.discard(sid)
        if old is not None:
            await old.close()
        self.sockets[sid] = ws
        try:
            await ws.send_str(json.dumps({"type": "status", "data": {"status": self.status(), "sid": sid}}))
            client, node = self.current()
            if client == sid and node is not None:  # a reconnecting client learns where its prompt is
                await ws.send_str(json.dumps({"type": "executing", "data": {"node": node}}))
            first = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and first:
                    first = False
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(data, dict) and data.get("type") == "feature_flags":
                        self.flagged.add(sid)
                        await ws.send_str(json.dumps({"type": "feature_flags", "data": server_features()}))
        finally:
            if self.sockets.get(sid) is ws:
                del self.sockets[sid]
                self.flagged.discard(sid)
        return ws


def server_features() -> dict:
    """What `/features` and the WebSocket handshake announce."""
    return {"supports_preview_metadata": False, "max_upload_size": 0}
