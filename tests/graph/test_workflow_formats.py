"""Workflow files: API prompts, `/prompt` bodies, UI graphs, PNG chunks; the node registry."""

from __future__ import annotations

import json
import sys

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from lcm_core.errors import WorkflowError
from lcm_core.graph import formats, registry

API = {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
UI = {"nodes": [], "links": [], "version": 0.4}


def test_api_ui_and_request_body(tmp_path):
    assert formats.parse(API).prompt == API and formats.parse(API).workflow is None
    ui = formats.parse(UI)
    assert ui.prompt is None and ui.workflow == UI and ui.extra_pnginfo == {"workflow": UI}
    body = formats.parse({"prompt": API, "client_id": "c", "extra_data": {"extra_pnginfo": {"workflow": UI}}})
    assert body.prompt == API and body.extra_pnginfo == {"workflow": UI}
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(API).encode())
    assert formats.load(path).prompt == API


def test_png_with_both_chunks(tmp_path):
    info = PngInfo()
    info.add_text("prompt", json.dumps(API))
    info.add_text("workflow", json.dumps(UI))
    path = tmp_path / "a.png"
    Image.new("RGB", (2, 2)).save(path, pnginfo=info)
    source = formats.load(path)
    assert (source.prompt, source.workflow) == (API, UI)


def test_png_with_only_a_workflow_chunk(tmp_path):
    info = PngInfo()
    info.add_text("workflow", json.dumps(UI))
    path = tmp_path / "w.png"
    Image.new("RGB", (2, 2)).save(path, pnginfo=info)
    assert formats.load(path).prompt is None and formats.load(path).workflow == UI


@pytest.mark.parametrize("text, match", [("[]", "JSON list"), ("null", "JSON NoneType"), ("{", "not valid JSON"),
                                         ('{"a": Infinity}', "not valid JSON")])
def test_clear_errors(text, match):
    with pytest.raises(WorkflowError, match=match):
        formats.parse_text(text, "wf.json")


def test_registry_loads_the_repo_nodes_as_lcm_nodes_sharing_lcm_core():
    package = registry.node_package()
    assert package.__name__ == "lcm_nodes" and sys.modules["lcm_nodes"] is package
    engine = sys.modules["lcm_nodes._engine"]
    import lcm_core

    assert engine.core is lcm_core  # one progress/paths state for the runner and the nodes
    assert {"LoadImage", "SaveImage", "PreviewImage", "EmptyLatentImage"} <= set(registry.node_classes())
