"""`lcm-run serve` speaks ComfyUI's API: node info, prompt → WebSocket → history → /view,
cache across prompts, queue and history management, interruption."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import aiohttp
import pytest
from PIL import Image

from lcm_core import progress
from lcm_core.graph.execute import Executor
from support import dummy_nodes
from support.live_server import LiveServer, follow, next_json, serve_folders

# The keys ComfyUI's server.py `node_info` writes for a classic node with OUTPUT_TOOLTIPS.
COMFY_NODE_INFO_KEYS = {"input", "input_order", "output", "output_is_list", "output_name", "name", "display_name",
                        "description", "python_module", "category", "output_node", "output_tooltips"}


class SlowSteps:
    """A sampler stand-in that takes 50 ms per step, reporting and checking interruption each step."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"latent_image": ("LATENT", {"tooltip": "latent"}),
                             "steps": ("INT", {"default": 40, "min": 1, "max": 1000, "tooltip": "steps"}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**32, "tooltip": "seed"})}}

    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("the latent",)
    FUNCTION = "sample"
    CATEGORY = "LCM/test"
    DESCRIPTION = "slow sampler"

    def sample(self, latent_image, steps, seed):
        for i in range(steps):
            progress.check_interrupt()
            time.sleep(0.05)
            progress.report(i + 1, steps, x=latent_image["samples"])
        return (latent_image,)


def _nodes() -> dict:
    return {**dummy_nodes.all_nodes(), "SlowSteps": SlowSteps}


@pytest.fixture
def server(tmp_path):
    folders = serve_folders(tmp_path)
    dummy_nodes.CALLS.clear()
    live = LiveServer(_nodes(), {"LCMSampler": "LCM Sampler"}, user_dir=tmp_path / "user")
    live.folders = folders
    yield live
    live.stop()


def run(coro):
    return asyncio.run(coro)


async def _submit(session, url: str, prompt: dict, client_id: str = "tester", **extra) -> dict:
    async with session.post(url + "/prompt", json={"prompt": prompt, "client_id": client_id, **extra}) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


def test_object_info_has_comfyui_shape(server):
    info = server.get_json("/object_info")
    assert set(info) == set(_nodes())
    sampler = info["LCMSampler"]
    assert set(info["SlowSteps"]) == COMFY_NODE_INFO_KEYS
    assert set(sampler) == COMFY_NODE_INFO_KEYS - {"output_tooltips"}  # the dummy declares none
    assert sampler["input_order"] == {"required": ["model", "positive", "latent_image", "seed", "steps",
                                                   "guidance_scale", "denoise", "sampler_name"],
                                      "optional": ["negative", "original_inference_steps", "tcd_gamma", "timesteps"]}
    assert sampler["output"] == ["LATENT"] and sampler["output_name"] == ["LATENT"]
    assert sampler["output_is_list"] == [False]
    assert sampler["display_name"] == "LCM Sampler" and sampler["category"] == "LCM/sampling"
    assert sampler["python_module"] == "custom_nodes.comfyui-lcm"
    assert info["SaveImage"]["output_node"] is True and info["SaveImage"]["python_module"] == "nodes"
    assert server.get_json("/api/object_info/LCMSampler") == {"LCMSampler": sampler}
    assert server.get_json("/object_info/NoSuchNode") == {}


def test_prompt_runs_and_view_matches_the_headless_runner(server, tmp_path):
    prompt = dummy_nodes.txt2img_prompt(seed=7)

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?clientId=tester") as ws:
            hello = await ws.receive_json()
            assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}},
                                                          "sid": "tester"}}
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            flags = await ws.receive_json()
            assert flags["type"] == "feature_flags"  # the editor's handshake: it then gets latent previews
            answer = await _submit(s, server.url, prompt)
            assert set(answer) == {"prompt_id", "number", "node_errors"} and answer["node_errors"] == {}
            messages, frames = await follow(ws, answer["prompt_id"])
            history = await (await s.get(f"{server.url}/history/{answer['prompt_id']}")).json()
            image = history[answer["prompt_id"]]["outputs"]["6"]["images"][0]
            async with s.get(server.url + "/view", params=image) as r:
                assert r.status == 200 and r.content_type == "image/png"
                return answer, messages, frames, history, await r.read()

    answer, messages, frames, history, png = run(go())
    kinds = [m["type"] for m in messages]
    assert kinds[kinds.index("execution_start"):] == [
        "execution_start", "execution_cached", "executing", "executing", "executing", "executing", "progress",
        "progress", "executing", "executing", "executed", "execution_success", "status", "executing"]
    progress_msgs = [m["data"] for m in messages if m["type"] == "progress"]
    assert progress_msgs == [{"value": i, "max": 2, "prompt_id": answer["prompt_id"], "node": "4"} for i in (1, 2)]
    assert len(frames) == 2  # one latent preview per step: event 1 (PREVIEW_IMAGE), image type 1 (JPEG)
    for frame in frames:
        assert struct.unpack(">II", frame[:8]) == (1, 1) and frame[8:10] == b"\xff\xd8"
    entry = history[answer["prompt_id"]]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert entry["prompt"][1] == answer["prompt_id"] and entry["prompt"][4] == ["6"]

    # The same prompt through the headless runner's executor (what `lcm-run` does) writes the same bytes.
    served = server.folders.output_dir / "test_00001_.png"
    assert served.read_bytes() == png
    result = Executor(_nodes()).run(prompt, prompt_id="x")
    assert result.ok
    local = server.folders.output_dir / result.outputs["6"]["images"][0]["filename"]
    with Image.open(local) as a, Image.open(served) as b:
        assert a.tobytes() == b.tobytes() and a.text["prompt"] == b.text["prompt"]


def test_cache_is_kept_across_prompts(server):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?clientId=tester") as ws:
            await ws.receive_json()
            first = await _submit(s, server.url, dummy_nodes.txt2img_prompt(seed=1))
            await follow(ws, first["prompt_id"])
            second = await _submit(s, server.url, dummy_nodes.txt2img_prompt(seed=2))
            return await follow(ws, second["prompt_id"])

    messages, frames = run(go())
    assert frames == []  # like ComfyUI's default: no previews for clients that did not ask (scripts)
    cached = next(m["data"]["nodes"] for m in messages if m["type"] == "execution_cached")
    assert sorted(cached) == ["1", "2", "3"]
    assert dummy_nodes.CALLS["LCMCheckpointLoader"] == 1 and dummy_nodes.CALLS["LCMSampler"] == 2


def test_validation_error_has_comfyui_shape(server):
    prompt = dummy_nodes.txt2img_prompt()
    prompt["4"]["inputs"]["steps"] = 500

    async def go():
        async with aiohttp.ClientSession() as s, s.post(server.url + "/api/prompt", json={"prompt": prompt}) as r:
            return r.status, await r.json()

    status, body = run(go())
    assert status == 400
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    entry = body["node_errors"]["4"]
    assert entry["class_type"] == "LCMSampler" and entry["dependent_outputs"] == ["6"]
    assert entry["errors"][0]["type"] == "value_bigger_than_max"
    assert entry["errors"][0]["extra_info"]["input_name"] == "steps"


def test_node_failure_reports_execution_error_and_worker_goes_on(server):
    failing = dummy_nodes.txt2img_prompt()
    failing["7"] = {"class_type": "FailingNode", "inputs": {"samples": ["4", 0]}}
    failing["5"]["inputs"]["samples"] = ["7", 0]

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?clientId=tester") as ws:
            await ws.receive_json()
            bad = await _submit(s, server.url, failing)
            bad_msgs, _ = await follow(ws, bad["prompt_id"])
            good = await _submit(s, server.url, dummy_nodes.txt2img_prompt(seed=3))
            good_msgs, _ = await follow(ws, good["prompt_id"])
            history = await (await s.get(server.url + "/history")).json()
            return bad, bad_msgs, good_msgs, history

    bad, bad_msgs, good_msgs, history = run(go())
    error = next(m for m in bad_msgs if m["type"] == "execution_error")
    assert error["type"] == "execution_error"
    assert error["data"]["node_id"] == "7" and error["data"]["exception_message"] == "dummy failure"
    assert history[bad["prompt_id"]]["status"]["status_str"] == "error"
    assert [m["type"] for m in good_msgs][-3:] == ["execution_success", "status", "executing"]


def test_queue_history_and_interrupt(server):
    slow = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "2": {"class_type": "SlowSteps", "inputs": {"latent_image": ["1", 0], "steps": 200, "seed": 0}},
            "3": {"class_type": "LCMVAEDecode", "inputs": {"vae": ["5", 2], "samples": ["2", 0]}},
            "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
            "5": {"class_type": "LCMCheckpointLoader", "inputs": {"ckpt_name": dummy_nodes.CHECKPOINTS[0],
                                                                  "dtype": "auto"}}}

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?clientId=tester") as ws:
            await ws.receive_json()
            running = await _submit(s, server.url, slow)
            pending = await _submit(s, server.url, {**slow, "2": {**slow["2"], "inputs": {
                **slow["2"]["inputs"], "seed": 1}}})
            dropped = await _submit(s, server.url, {**slow, "2": {**slow["2"], "inputs": {
                **slow["2"]["inputs"], "seed": 2}}})
            last_step = 0
            while last_step < 3:  # wait until the sampler is in its loop
                msg = await next_json(ws)
                if msg["type"] == "progress":
                    last_step = msg["data"]["value"]
            queue = await (await s.get(server.url + "/queue")).json()
            async with s.post(server.url + "/queue", json={"delete": [dropped["prompt_id"]]}) as r:
                assert r.status == 200
            after_delete = await (await s.get(server.url + "/api/queue")).json()
            async with s.post(server.url + "/interrupt", json={}) as r:
                assert r.status == 200
            interrupted_at = last_step
            steps_after = []
            while True:
                msg = await next_json(ws)
                if msg["type"] == "progress" and msg["data"]["prompt_id"] == running["prompt_id"]:
                    steps_after.append(msg["data"]["value"])
                if msg["type"] == "execution_interrupted":
                    break
            # the queue goes on: interrupt the next one via its prompt_id once it runs
            while True:
                msg = await next_json(ws)
                if msg["type"] == "progress" and msg["data"]["prompt_id"] == pending["prompt_id"]:
                    break
            async with s.post(server.url + "/interrupt", json={"prompt_id": pending["prompt_id"]}) as r:
                assert r.status == 200
            await follow(ws, pending["prompt_id"])
            history = await (await s.get(server.url + "/history", params={"max_items": "1"})).json()
            async with s.post(server.url + "/history", json={"delete": [running["prompt_id"]]}) as r:
                assert r.status == 200
            remaining = await (await s.get(server.url + "/history")).json()
            async with s.post(server.url + "/history", json={"clear": True}) as r:
                assert r.status == 200
            cleared = await (await s.get(server.url + "/history")).json()
            return (running, pending, dropped, queue, after_delete, interrupted_at, steps_after, history, remaining,
                    cleared)

    (running, pending, dropped, queue, after_delete, interrupted_at, steps_after, history, remaining,
     cleared) = run(go())
    assert [item[1] for item in queue["queue_running"]] == [running["prompt_id"]]
    assert [item[1] for item in queue["queue_pending"]] == [pending["prompt_id"], dropped["prompt_id"]]
    assert [item[1] for item in after_delete["queue_pending"]] == [pending["prompt_id"]]
    assert len(steps_after) <= 1, f"ran {len(steps_after)} steps after the interrupt"
    assert list(history) == [pending["prompt_id"]]
    assert set(remaining) == {pending["prompt_id"]} and cleared == {}


def test_front_of_queue_numbers_and_status(server):
    async def go():
        async with aiohttp.ClientSession() as s:
            status = await (await s.get(server.url + "/prompt")).json()
            stats = await (await s.get(server.url + "/system_stats")).json()
            models = await (await s.get(server.url + "/models")).json()
            embeddings = await (await s.get(server.url + "/embeddings")).json()
            features = await (await s.get(server.url + "/features")).json()
            return status, stats, models, embeddings, features

    status, stats, models, embeddings, features = run(go())
    assert status == {"exec_info": {"queue_remaining": 0}}
    assert {"os", "ram_total", "ram_free", "python_version", "pytorch_version"} <= set(stats["system"])
    assert stats["devices"][0]["type"] in ("cpu", "cuda", "mps")
    assert "checkpoints" in models and "loras" in models
    assert embeddings == [] and features["max_upload_size"] == 1024 * 1024
    assert server.state.next_number() == 0 and server.state.next_number(front=True) == -1
    assert json.dumps(server.get_json("/models/checkpoints")) == "[]"


def test_reconnecting_client_is_told_the_running_node(server):
    slow = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "2": {"class_type": "SlowSteps", "inputs": {"latent_image": ["1", 0], "steps": 200, "seed": 5}},
            "3": {"class_type": "LCMVAEDecode", "inputs": {"vae": ["4", 2], "samples": ["2", 0]}},
            "4": {"class_type": "LCMCheckpointLoader", "inputs": {"ckpt_name": dummy_nodes.CHECKPOINTS[0],
                                                                  "dtype": "auto"}},
            "5": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}}}

    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(server.url + "/ws?clientId=again") as ws:
                await ws.receive_json()
                answer = await _submit(s, server.url, slow, client_id="again")
                while (await next_json(ws))["type"] != "progress":
                    pass
            async with s.ws_connect(server.url + "/ws?clientId=again") as ws:
                first, second = await next_json(ws), await next_json(ws)
                async with s.post(server.url + "/interrupt", json={"prompt_id": answer["prompt_id"]}):
                    pass
                messages, _ = await follow(ws, answer["prompt_id"])
        return first, second, messages

    first, second, messages = run(go())
    assert first["type"] == "status" and second == {"type": "executing", "data": {"node": "2"}}
    assert "execution_interrupted" in [m["type"] for m in messages]


def test_partial_execution_targets_run_only_what_they_need(server):
    prompt = dummy_nodes.txt2img_prompt(seed=21)
    prompt["7"] = {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}
    prompt["8"] = {"class_type": "FailingNode", "inputs": {"samples": ["4", 0]}}
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}}
    prompt["10"] = {"class_type": "LCMVAEDecode", "inputs": {"vae": ["1", 2], "samples": ["8", 0]}}

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?clientId=tester") as ws:
            await ws.receive_json()
            answer = await _submit(s, server.url, prompt, partial_execution_targets=["7"])
            messages, _ = await follow(ws, answer["prompt_id"])
            async with s.post(server.url + "/prompt", json={"prompt": prompt,
                                                            "partial_execution_targets": ["nope"]}) as r:
                refused = r.status
            return messages, refused

    messages, refused = run(go())
    ran = [m["data"]["node"] for m in messages if m["type"] == "executing" and m["data"]["node"]]
    assert ran == ["1", "2", "3", "4", "5", "7"] and messages[-3]["type"] == "execution_success"
    assert dummy_nodes.CALLS["FailingNode"] == 0 and refused == 400


def test_prompt_that_became_invalid_in_the_queue_reports_an_error(server):
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "gone.png"}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    Image.new("RGB", (8, 8)).save(server.folders.input_dir / "gone.png")

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(server.url + "/ws?clientId=tester") as ws:
            await ws.receive_json()
            blocker = await _submit(s, server.url, {
                "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
                "2": {"class_type": "SlowSteps", "inputs": {"latent_image": ["1", 0], "steps": 10, "seed": 9}},
                "3": {"class_type": "LCMVAEDecode", "inputs": {"vae": ["4", 2], "samples": ["2", 0]}},
                "4": {"class_type": "LCMCheckpointLoader", "inputs": {"ckpt_name": dummy_nodes.CHECKPOINTS[0],
                                                                      "dtype": "auto"}},
                "5": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}}})
            answer = await _submit(s, server.url, prompt)
            (server.folders.input_dir / "gone.png").unlink()  # removed while the prompt waits
            await follow(ws, blocker["prompt_id"])
            messages, _ = await follow(ws, answer["prompt_id"])
            history = await (await s.get(f"{server.url}/history/{answer['prompt_id']}")).json()
            return messages, history[answer["prompt_id"]]

    messages, entry = run(go())
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    assert error["exception_type"] == "ValidationError" and "gone.png" in json.dumps(error["node_errors"])
    assert entry["status"]["status_str"] == "error"


@pytest.mark.parametrize("method, expected", [
    ("auto", {"editor": ["editor"], "script": [], None: ["editor"]}),
    ("latent2rgb", {"editor": ["editor"], "script": ["script"], None: ["editor", "script"]}),
    ("none", {"editor": [], "script": [], None: []}),
])
def test_preview_targets_follow_the_preview_method(method, expected):
    from lcm_core.server.hub import Hub

    hub = Hub(lambda: {}, method)
    hub.sockets = {"editor": object(), "script": object()}
    hub.flagged = {"editor"}
    assert {sid: hub.preview_targets(sid) for sid in expected} == expected
