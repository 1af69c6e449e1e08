"""ComfyUI's HTTP API over the headless engine: prompts, queue, history, node info, models.

Shapes follow ComfyUI's `server.py` so its frontend and API clients work unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import sys
import uuid
from typing import Any

from aiohttp import web

from .. import paths
from ..graph.validate import error as error_entry
from ..graph.validate import validate_prompt
from .hub import server_features
from .state import ServerState

log = logging.getLogger(__name__)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 when it is not."""
    try:
        text = await request.text()
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as ex:
        raise web.HTTPBadRequest(text=f"the body is not valid JSON: {ex}") from None


async def read_json_object(request: web.Request, *, empty_ok: bool = False) -> dict:
    """The request body as a JSON object; 400 otherwise."""
    if empty_ok and not (await request.read()).strip():
        return {}
    data = await read_json(request)
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=f"the body must be a JSON object, not {type(data).__name__}")
    return data


def node_info(state: ServerState, class_type: str) -> dict:
    """One entry of `/object_info`, field for field as ComfyUI's `node_info`."""
    cls = state.node_classes[class_type]
    declared = cls.INPUT_TYPES()
    outputs = tuple(cls.RETURN_TYPES)
    info = {
        "input": declared,
        "input_order": {group: list(values.keys()) for group, values in declared.items()},
        "output": outputs,
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(outputs))),
        "output_name": tuple(getattr(cls, "RETURN_NAMES", outputs)),
        "name": class_type,
        "display_name": state.display_names.get(class_type, class_type),
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", state.python_module(cls)),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    if getattr(cls, "DEPRECATED", False):
        info["deprecated"] = True
    if getattr(cls, "EXPERIMENTAL", False):
        info["experimental"] = True
    return info


def only_ancestors(prompt: dict, targets: list[str]) -> dict:
    """The part of `prompt` that `targets` need (the editor's "run selected outputs")."""
    keep, stack = set(), list(targets)
    while stack:
        node_id = stack.pop()
        if node_id in keep or not isinstance(prompt.get(node_id), dict):
            continue
        keep.add(node_id)
        inputs = prompt[node_id].get("inputs")
        for value in (inputs.values() if isinstance(inputs, dict) else ()):
            if isinstance(value, list) and value and str(value[0]) in prompt:
                stack.append(str(value[0]))
    return {k: v for k, v in prompt.items() if k in keep}


def add_routes(routes: web.RouteTableDef, state: ServerState) -> None:
    """Register the API routes on `routes` (the caller mirrors them under `/api`)."""

    @routes.get("/object_info")
    async def object_info(request):
        out = {}
        for class_type in state.node_classes:
            try:
                out[class_type] = node_info(state, class_type)
            except Exception:
                log.exception("object_info failed for %s", class_type)
        return web.json_response(out)

    @routes.get("/object_info/{node_class}")
    async def object_info_node(request):
        class_type = request.match_info["node_class"]
        if class_type not in state.node_classes:
            return web.json_response({})
        return web.json_response({class_type: node_info(state, class_type)})

    @routes.get("/prompt")
    async def get_prompt(request):
        return web.json_response(state.queue_info())

    @routes.post("/prompt")
    async def post_prompt(request):
        data = await read_json_object(request)
        prompt = data.get("prompt")
        if prompt is None:
            err = error_entry("no_prompt", "No prompt provided", "No prompt provided")
            return web.json_response({"error": err, "node_errors": {}}, status=400)
        extra_data = data.get("extra_data", {})
        if not isinstance(extra_data, dict):
            raise web.HTTPBadRequest(text="extra_data must be an object")
        number = data.get("number")
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise web.HTTPBadRequest(text="number must be a finite number")
            number = float(number)
        else:
            number = state.next_number(front=bool(data.get("front")))
        prompt_id = str(data.get("prompt_id") or uuid.uuid4())
        targets = data.get("partial_execution_targets")
        if targets is not None:
            if not isinstance(prompt, dict) or not isinstance(targets, list) \
                    or not all(isinstance(t, str) and t in prompt for t in targets):
                raise web.HTTPBadRequest(text="partial_execution_targets must list node ids of the prompt")
            prompt = only_ancestors(prompt, targets)
        checked = validate_prompt(prompt, state.node_classes)
        if not checked.ok:
            return web.json_response(checked.to_comfy(), status=400)
        client_id = data.get("client_id")
        if isinstance(client_id, str):
            extra_data = {**extra_data, "client_id": client_id}
        state.queue.put([number, prompt_id, prompt, extra_data, list(checked.outputs)])
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": checked.node_errors})

    @routes.get("/queue")
    async def get_queue(request):
        running, pending = state.queue.running_and_pending()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    @routes.post("/queue")
    async def post_queue(request):
        _clear_and_delete(await read_json_object(request), state.queue.clear, state.queue.delete)
        return web.Response(status=200)

    @routes.post("/interrupt")
    async def interrupt(request):
        data = await read_json_object(request, empty_ok=True)
        prompt_id = data.get("prompt_id")
        if not prompt_id or prompt_id in state.queue.running_ids():
            state.worker.interrupt()
        return web.Response(status=200)

    @routes.post("/free")
    async def free(request):
        await read_json_object(request, empty_ok=True)
        return web.Response(status=200)

    @routes.get("/history")
    async def history(request):
        query = request.rel_url.query
        try:
            max_items = int(query["max_items"]) if "max_items" in query else None
            offset = int(query.get("offset", -1))
        except ValueError:
            raise web.HTTPBadRequest(text="max_items and offset must be integers") from None
        return web.json_response(state.queue.get_history(max_items=max_items, offset=offset))

    @routes.get("/history/{prompt_id}")
    async def history_one(request):
        return web.json_response(state.queue.get_history(request.match_info["prompt_id"]))

    @routes.post("/history")
    async def post_history(request):
        _clear_and_delete(await read_json_object(request), state.queue.clear_history, state.queue.delete_history)
        return web.Response(status=200)

    @routes.get("/system_stats")
    async def system_stats(request):
        return web.json_response(system_info(state))

    @routes.get("/features")
    async def features(request):
        return web.json_response({**server_features(), "max_upload_size": state.max_upload_size})

    @routes.get("/embeddings")
    async def embeddings(request):
        return web.json_response([os.path.splitext(n)[0] for n in paths.list_files("embeddings")])

    @routes.get("/models")
    async def model_types(request):
        return web.json_response(list(paths.MODEL_KINDS))

    @routes.get("/models/{folder}")
    async def models(request):
        folder = request.match_info["folder"]
        if folder not in paths.MODEL_KINDS:
            raise web.HTTPNotFound(text=f"unknown model folder {folder!r}")
        if folder == "diffusers":
            return web.json_response(paths.list_dirs(folder, "model_index.json"))
        return web.json_response(paths.list_files(folder))

    @routes.get("/extensions")
    async def extensions(request):
        return web.json_response(state.extension_scripts())


def _memory() -> tuple[int, int]:
    """(total, available) RAM in bytes from /proc/meminfo; zeros where it is absent."""
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/meminfo", encoding="ascii"))
        return (int(fields["MemTotal"].split()[0]) * 1024, int(fields["MemAvailable"].split()[0]) * 1024)
    except (OSError, KeyError, ValueError):
        return 0, 0


def system_info(state: ServerState) -> dict:
    """`/system_stats`: ComfyUI's keys, with this engine's versions and device."""
    from importlib import metadata

    import torch

    from ..devices import pick_device

    ram_total, ram_free = _memory()
    device = pick_device()
    vram_total = vram_free = 0
    if device.type == "cuda":
        vram_free, vram_total = torch.cuda.mem_get_info(device)
    try:
        frontend = metadata.version("comfyui-frontend-package")
    except metadata.PackageNotFoundError:
        frontend = ""
    return {
        "system": {
            "os": os.name, "ram_total": ram_total, "ram_free": ram_free,
            "comfyui_version": f"lcm-run {state.version}", "required_frontend_version": frontend,
            "python_version": sys.version, "pytorch_version": torch.__version__,
            "embedded_python": False, "argv": sys.argv, "platform": platform.platform(),
        },
        "devices": [{"name": str(device), "type": device.type, "index": device.index, "vram_total": vram_total,
                     "vram_free": vram_free, "torch_vram_total": vram_total, "torch_vram_free": vram_free}],
    }


def _clear_and_delete(data: dict, clear, delete_one) -> None:
    """ComfyUI's `{"clear": true, "delete": [ids]}` body for POST /queue and /history."""
    delete = data.get("delete", [])
    if not isinstance(delete, list):
        raise web.HTTPBadRequest(text="delete must be a list of prompt ids")
    if data.get("clear"):
        clear()
    for prompt_id in delete:
        delete_one(str(prompt_id))
