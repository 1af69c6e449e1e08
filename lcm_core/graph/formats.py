"""Workflow files in the shapes ComfyUI writes.

- API format (a "prompt"): `{"<id>": {"class_type", "inputs", "_meta"}}`, also accepted
  wrapped as the `/prompt` request body `{"prompt": {...}, "extra_data": {...}}`.
- UI (graph) format: `{"nodes": [...], "links": [...], ...}` with links as arrays
  (schema 0.4) or objects (schema 1).
- PNG images carrying `prompt` and/or `workflow` tEXt chunks, as ComfyUI's SaveImage writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WorkflowError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class WorkflowSource:
    """What a workflow file holds: an API prompt, a UI workflow, or both (PNG, request body)."""

    prompt: dict | None = None
    workflow: dict | None = None
    origin: str = ""
    extra_pnginfo: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workflow is not None and "workflow" not in self.extra_pnginfo:
            self.extra_pnginfo = {**self.extra_pnginfo, "workflow": self.workflow}


def is_ui_workflow(data: Any) -> bool:
    """True for the frontend's graph format (a `nodes` list)."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def parse(data: Any, origin: str = "") -> WorkflowSource:
    """Classify decoded JSON as a UI workflow, an API prompt or a `/prompt` request body."""
    if not isinstance(data, dict):
        raise WorkflowError(
            f"{origin or 'workflow'}: the top level is a JSON {type(data).__name__}, not an object",
            details="A workflow is an object: API format maps node ids to nodes; UI format has 'nodes' and 'links'.",
        )
    if is_ui_workflow(data):
        return WorkflowSource(workflow=data, origin=origin)
    if isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        extra = data.get("extra_data") or {}
        pnginfo = extra.get("extra_pnginfo") if isinstance(extra, dict) else None
        pnginfo = pnginfo if isinstance(pnginfo, dict) else {}
        return WorkflowSource(prompt=data["prompt"], origin=origin, extra_pnginfo=dict(pnginfo))
    return WorkflowSource(prompt=data, origin=origin)


def parse_text(text: str, origin: str = "") -> WorkflowSource:
    """Decode JSON text (rejecting NaN/Infinity literals, which ComfyUI never writes) and classify it."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as ex:
        raise WorkflowError(f"{origin or 'workflow'} is not valid JSON: {ex}",
                            details="Export the workflow from ComfyUI with 'Save' or 'Export (API)'.") from None
    return parse(data, origin)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_png_chunks(path: Path) -> dict[str, str]:
    """The text chunks of a PNG file (Pillow), as ComfyUI's frontend reads them."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return {k: v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError) as ex:
        raise WorkflowError(f"{path}: not a readable PNG ({ex})") from None


def load_png(path: Path) -> WorkflowSource:
    """The prompt and workflow embedded in a PNG saved by ComfyUI or `lcm-run`."""
    chunks = read_png_chunks(path)
    if "prompt" not in chunks and "workflow" not in chunks:
        raise WorkflowError(f"{path}: this PNG carries no 'prompt' or 'workflow' text chunk",
                            details="Only images saved by ComfyUI's SaveImage (or lcm-run) embed their workflow.")
    decoded = {}
    for key in ("prompt", "workflow"):
        if key in chunks:
            try:
                decoded[key] = json.loads(chunks[key], parse_constant=_reject_constant)
            except (json.JSONDecodeError, ValueError) as ex:
                raise WorkflowError(f"{path}: the '{key}' chunk is not valid JSON: {ex}") from None
    prompt, workflow = decoded.get("prompt"), decoded.get("workflow")
    if prompt is not None and not isinstance(prompt, dict):
        raise WorkflowError(f"{path}: the 'prompt' chunk is a JSON {type(prompt).__name__}, not an object")
    if workflow is not None and not is_ui_workflow(workflow):
        workflow = None if prompt is not None else parse(workflow, str(path)).workflow
    return WorkflowSource(prompt=prompt, workflow=workflow, origin=str(path))


def load(path: str | Path) -> WorkflowSource:
    """Read a workflow file: JSON (API or UI format) or a PNG with embedded chunks."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as ex:
        raise WorkflowError(f"cannot read workflow {path}: {ex.strerror or ex}") from None
    if raw.startswith(PNG_SIGNATURE):
        return load_png(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkflowError(f"{path} is neither UTF-8 JSON nor a PNG",
                            details="Give a workflow .json (UI or API format) or a PNG saved by ComfyUI.") from None
    return parse_text(text, str(path))
