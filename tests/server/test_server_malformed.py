"""Malformed requests get a 4xx, paths never leave their folders, and the server keeps serving."""

from __future__ import annotations

import asyncio
import io
import json
import os

import aiohttp
import pytest

from support import dummy_nodes
from support.live_server import LiveServer, follow, serve_folders


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (4, 4), (200, 30, 30, 128)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()
HUGE = b"x" * (2 * 1024 * 1024)  # the test server accepts 1 MB


@pytest.fixture
def server(tmp_path):
    folders = serve_folders(tmp_path)
    (tmp_path / "secret.txt").write_text("secret")
    (folders.output_dir / "ok.png").write_bytes(PNG)
    (folders.output_dir / "leak.png").symlink_to(tmp_path / "secret.txt")
    (folders.output_dir / "escape").symlink_to(tmp_path)
    (folders.input_dir / "escape").symlink_to(tmp_path)
    live = LiveServer(dummy_nodes.all_nodes(), user_dir=tmp_path / "user")
    live.folders = folders
    live.tmp = tmp_path
    yield live
    live.stop()


def _upload(name="a.png", data=PNG, **fields) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("image", data, filename=name, content_type="image/png")
    return form


def _prompt_body(**changes) -> dict:
    prompt = dummy_nodes.txt2img_prompt()
    for path, value in changes.items():
        node, name = path.split("__")
        prompt[node]["inputs"][name] = value
    return {"prompt": prompt}


# (method, path, keyword arguments for aiohttp, expected status)
CASES = [
    ("POST", "/prompt", {"data": b"{not json"}, 400),
    ("POST", "/prompt", {"data": b""}, 400),
    ("POST", "/prompt", {"data": b"\xff\xfe\x00garbage"}, 400),
    ("POST", "/prompt", {"json": [1, 2, 3]}, 400),
    ("POST", "/prompt", {"json": "a string"}, 400),
    ("POST", "/prompt", {"json": {}}, 400),
    ("POST", "/prompt", {"json": {"prompt": None}}, 400),
    ("POST", "/prompt", {"json": {"prompt": []}}, 400),
    ("POST", "/prompt", {"json": {"prompt": "text"}}, 400),
    ("POST", "/prompt", {"json": {"prompt": {}}}, 400),
    ("POST", "/prompt", {"json": {"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}}, 400),
    ("POST", "/prompt", {"json": {"prompt": {"1": "not a node"}}}, 400),
    ("POST", "/prompt", {"json": {"prompt": {"1": {"inputs": {}}}}}, 400),
    ("POST", "/prompt", {"json": _prompt_body(**{"4__steps": "many"})}, 400),
    ("POST", "/prompt", {"json": _prompt_body(**{"4__seed": -5})}, 400),
    ("POST", "/prompt", {"json": _prompt_body(**{"4__model": ["99", 0]})}, 400),
    ("POST", "/prompt", {"json": _prompt_body(**{"4__model": ["1", 7]})}, 400),
    ("POST", "/prompt", {"json": _prompt_body(**{"1__ckpt_name": "../../etc/passwd"})}, 400),
    ("POST", "/prompt", {"json": {**_prompt_body(), "number": "first"}}, 400),
    ("POST", "/prompt", {"json": {**_prompt_body(), "extra_data": []}}, 400),
    ("POST", "/prompt", {"data": json.dumps({**_prompt_body(), "number": float("nan")}).encode()}, 400),
    ("POST", "/prompt", {"data": HUGE}, 413),
    ("POST", "/queue", {"data": b"[["}, 400),
    ("POST", "/queue", {"json": {"delete": "abc"}}, 400),
    ("POST", "/queue", {"json": 5}, 400),
    ("POST", "/history", {"json": {"delete": 5}}, 400),
    ("POST", "/history", {"data": b"nope"}, 400),
    ("POST", "/interrupt", {"data": b"{"}, 400),
    ("GET", "/history", {"params": {"max_items": "ten"}}, 400),
    ("GET", "/models/../../etc", {}, 404),
    ("GET", "/models/nonsense", {}, 404),
    ("GET", "/view", {}, 404),
    ("GET", "/view", {"params": {"filename": "missing.png"}}, 404),
    ("GET", "/view", {"params": {"filename": "../secret.txt"}}, 400),
    ("GET", "/view", {"params": {"filename": "/etc/passwd"}}, 400),
    ("GET", "/view", {"params": {"filename": "ok.png", "subfolder": ".."}}, 403),
    ("GET", "/view", {"params": {"filename": "secret.txt", "subfolder": "../"}}, 403),
    ("GET", "/view", {"params": {"filename": "passwd", "subfolder": "/etc"}}, 403),
    ("GET", "/view", {"params": {"filename": "ok.png", "type": "models"}}, 400),
    ("GET", "/view", {"params": {"filename": "leak.png"}}, 403),
    ("GET", "/view", {"params": {"filename": "secret.txt", "subfolder": "escape"}}, 403),
    ("GET", "/view", {"params": {"filename": "ok.png\x00.txt"}}, 400),
    ("GET", "/view", {"params": {"filename": "ok.png", "preview": "webp;abc", "subfolder": "x/../.."}}, 403),
    ("POST", "/upload/image", {"data": b"not multipart"}, 400),
    ("POST", "/upload/image", {"data": _upload(subfolder="../..")}, 403),
    ("POST", "/upload/image", {"data": _upload(subfolder="/tmp")}, 403),
    ("POST", "/upload/image", {"data": _upload(subfolder="escape")}, 403),
    ("POST", "/upload/image", {"data": _upload(type="models")}, 400),
    ("POST", "/upload/image", {"data": _upload(name="..")}, 400),
    ("POST", "/upload/image", {"data": _upload(data=HUGE)}, 413),
    ("GET", "/userdata", {"params": {"dir": "../.."}}, 403),
    ("GET", "/userdata/..%2F..%2Fsecret.txt", {}, 403),
    ("POST", "/userdata/%2Fetc%2Fpasswd", {"data": b"x"}, 403),
    ("POST", "/settings", {"json": [1]}, 400),
    ("GET", "/no/such/route", {}, 404),
    ("DELETE", "/prompt", {}, 405),
]


def test_malformed_requests_get_4xx_and_server_keeps_serving(server):
    assert len(CASES) >= 30

    async def go():
        got = []
        async with aiohttp.ClientSession() as s:
            for method, path, kwargs, _ in CASES:
                async with s.request(method, server.url + path, **kwargs) as r:
                    got.append(r.status)
                async with s.get(server.url + "/system_stats") as r:
                    assert r.status == 200
        return got

    got = asyncio.run(go())
    wrong = [(m, p, k, want, status) for (m, p, k, want), status in zip(CASES, got) if status != want]
    assert not wrong, wrong
    assert not any(server.tmp.glob("**/secret.txt.*")) and (server.tmp / "secret.txt").read_text() == "secret"
    assert server.state.worker._thread.is_alive()


def test_websocket_garbage_is_ignored(server):
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(server.url + "/ws?clientId=bad") as bad:
                await bad.receive_json()
                await bad.send_str("{{{ not json")
                await bad.send_bytes(os.urandom(512))
                await bad.send_str('{"type": "feature_flags", "data": 5}')
                await bad.send_str("[]")
                await bad.send_str("x" * 100_000)
            async with s.ws_connect(server.url + "/ws?clientId=" + "z" * 5000) as long_id:
                hello = await long_id.receive_json()
            async with s.get(server.url + "/ws") as r:  # not a WebSocket upgrade
                plain_status = r.status
            async with s.ws_connect(server.url + "/ws?clientId=good") as ws:
                await ws.receive_json()
                async with s.post(server.url + "/prompt", json={**_prompt_body(), "client_id": "good"}) as r:
                    answer = await r.json()
                messages, _ = await follow(ws, answer["prompt_id"])
        return hello, plain_status, messages

    hello, plain_status, messages = asyncio.run(go())
    assert len(hello["data"]["sid"]) <= 128
    assert 400 <= plain_status < 500
    assert "execution_success" in [m["type"] for m in messages]


def test_upload_writes_inside_input_and_never_overwrites_unless_asked(server):
    async def go():
        async with aiohttp.ClientSession() as s:
            answers = []
            for form in (_upload(), _upload(data=PNG + b"1"), _upload(data=PNG + b"2", overwrite="true"),
                         _upload(subfolder="sub/dir")):
                async with s.post(server.url + "/upload/image", data=form) as r:
                    assert r.status == 200, await r.text()
                    answers.append(await r.json())
            async with s.get(server.url + "/view", params={"filename": "a.png", "type": "input"}) as r:
                viewed = await r.read()
            converted = {}
            for query in ({"preview": "jpeg;50"}, {"preview": "webp;90"}, {"channel": "rgb"}, {"channel": "a"}):
                params = {"filename": "a.png", "subfolder": "sub/dir", "type": "input", **query}
                async with s.get(server.url + "/view", params=params) as r:
                    converted[json.dumps(query)] = (r.status, r.content_type, (await r.read())[:4])
        return answers, viewed, converted

    answers, viewed, converted = asyncio.run(go())
    assert converted == {
        '{"preview": "jpeg;50"}': (200, "image/jpeg", b"\xff\xd8\xff\xe0"),
        '{"preview": "webp;90"}': (200, "image/webp", b"RIFF"),
        '{"channel": "rgb"}': (200, "image/png", b"\x89PNG"),
        '{"channel": "a"}': (200, "image/png", b"\x89PNG")}
    assert answers[0] == {"name": "a.png", "subfolder": "", "type": "input"}
    assert answers[1]["name"] == "a (1).png" and answers[2]["name"] == "a.png"
    assert answers[3] == {"name": "a.png", "subfolder": "sub/dir", "type": "input"}
    inputs = server.folders.input_dir
    assert viewed == (inputs / "a.png").read_bytes() == PNG + b"2"
    assert (inputs / "sub" / "dir" / "a.png").is_file()
