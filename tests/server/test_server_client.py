"""A maintained third-party ComfyUI API client (`comfy-api-simplified` from PyPI, pinned in
the `test` extra) runs a workflow against `lcm-run serve` with no change to the client."""

from __future__ import annotations

import pytest

from support import dummy_nodes
from support.live_server import LiveServer, serve_folders

simplified = pytest.importorskip("comfy_api_simplified", reason="comfy-api-simplified (the test extra) is missing")


@pytest.fixture
def server(tmp_path):
    folders = serve_folders(tmp_path)
    live = LiveServer(dummy_nodes.all_nodes(), user_dir=tmp_path / "user")
    live.folders = folders
    yield live
    live.stop()


def _workflow(seed: int) -> dict:
    prompt = dummy_nodes.txt2img_prompt(seed=seed, steps=3)
    for node in prompt.values():
        node["_meta"] = {"title": node["class_type"]}
    prompt["6"]["_meta"]["title"] = "Save Image"
    return prompt


def test_comfy_api_simplified_runs_a_workflow(server):
    api = simplified.ComfyApiWrapper(server.url)
    workflow = simplified.ComfyWorkflowWrapper(_workflow(seed=11))
    workflow.set_node_param("LCMSampler", "seed", 12)
    images = api.queue_and_wait_images(workflow, "Save Image")
    assert list(images) == ["test_00001_.png"]
    assert images["test_00001_.png"] == (server.folders.output_dir / "test_00001_.png").read_bytes()

    queued = api.queue_prompt(_workflow(seed=13))
    assert set(queued) == {"prompt_id", "number", "node_errors"}
    bad = _workflow(seed=14)
    bad["4"]["inputs"]["steps"] = 0
    with pytest.raises(simplified.exceptions.ComfyApiError, match="400"):
        api.queue_prompt(bad)
