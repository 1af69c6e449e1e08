"""Acceptance: each example workflow posted to `lcm-run serve` (real nodes, tiny fixture
models) is followed over the WebSocket to `execution_success`, and the image fetched with
`/view` equals, byte for byte, what `lcm-run` writes for the same workflow and seed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from lcm_core import paths
from lcm_core.graph import registry
from support.live_server import LiveServer, follow
from support.workflow_fixtures import PACK_NODES, fixture_folders

TESTS = Path(__file__).resolve().parents[1]
# The demo_* workflows need the shipped demo models, not fixtures: tests/demo runs them.
API_FILES = sorted(p for p in (TESTS.parent / "workflows" / "api").glob("*.json") if not p.name.startswith("demo_"))


def _small(prompt: dict) -> dict:
    for node in prompt.values():
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=64, height=64)
    return prompt


async def _serve_once(url: str, prompt: dict) -> tuple[list, bytes]:
    async with aiohttp.ClientSession() as s, s.ws_connect(url + "/ws?clientId=examples") as ws:
        await ws.receive_json()
        async with s.post(url + "/prompt", json={"prompt": prompt, "client_id": "examples"}) as r:
            answer = await r.json()
            assert r.status == 200, answer
        messages, _ = await follow(ws, answer["prompt_id"], timeout=300)
        history = await (await s.get(f"{url}/history/{answer['prompt_id']}")).json()
        (images,) = [o["images"] for o in history[answer["prompt_id"]]["outputs"].values() if "images" in o]
        async with s.get(url + "/view", params=images[0]) as r:
            assert r.status == 200
            return messages, await r.read()


@pytest.mark.slow
@pytest.mark.parametrize("path", API_FILES, ids=[p.stem for p in API_FILES])
def test_server_output_equals_lcm_run(path, tmp_path, monkeypatch):
    from lcm_core.graph import cli

    if not PACK_NODES <= set(registry.node_classes()):
        pytest.skip("the real LCM nodes are not all registered yet")
    configs = pytest.importorskip("lcm_core.models.configs")
    prompt = _small(json.loads(path.read_text()))
    root, models, inputs = fixture_folders(tmp_path, prompt)
    workflow_file = tmp_path / "prompt.json"
    workflow_file.write_text(json.dumps(prompt))
    monkeypatch.setenv("LCM_DEVICE", "cpu")
    try:
        with configs.use_root(root):
            code = cli.main([str(workflow_file), "--models-dir", str(models), "--input-dir", str(inputs),
                             "--output-dir", str(tmp_path / "cli"), "--device", "cpu"])
            assert code == 0
            paths.configure(paths.LocalFolders(models_dir=models, input_dir=inputs, output_dir=tmp_path / "served",
                                               temp_dir=tmp_path / "temp"))
            live = LiveServer(registry.node_classes(), registry.display_names(), user_dir=tmp_path / "user")
            try:
                messages, served = asyncio.run(_serve_once(live.url, prompt))
            finally:
                live.stop()
    finally:
        paths.configure(None)
    assert "execution_success" in [m["type"] for m in messages]
    (written,) = sorted((tmp_path / "cli").glob("*.png"))
    assert served == written.read_bytes()
