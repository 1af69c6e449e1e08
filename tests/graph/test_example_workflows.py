"""The example workflows: each UI file converts to exactly its checked-in API copy, and
runs with `lcm-run` on tiny fixture models once the real nodes are registered (the
`demo_*` workflows run on the shipped demo models instead: tests/demo)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lcm_core.graph import registry
from lcm_core.graph.convert import ui_to_api
from lcm_core.graph.formats import read_png_chunks
from support.host import PACK_ROOT
from support.workflow_fixtures import PACK_NODES, fixture_folders

WORKFLOWS = PACK_ROOT / "workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
FIXTURE_RUN_FILES = [p for p in UI_FILES if not p.name.startswith("demo_")]


def test_every_ui_workflow_has_an_api_copy():
    assert PACK_NODES <= set(registry.node_classes())
    assert [p.name for p in UI_FILES] == sorted(p.name for p in (WORKFLOWS / "api").glob("*.json"))
    assert {"lcm_txt2img.json", "sd15_lcm_lora_style.json", "sdxl_lcm_lora.json", "lcm_img2img.json"} <= {
        p.name for p in UI_FILES}


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_ui_converts_to_the_checked_in_api_file(path):
    classes, names = registry.node_classes(), registry.display_names()
    expected = json.loads((WORKFLOWS / "api" / path.name).read_text())
    assert ui_to_api(json.loads(path.read_text()), classes, names) == expected


@pytest.mark.parametrize("path", FIXTURE_RUN_FILES, ids=[p.stem for p in FIXTURE_RUN_FILES])
def test_runs_headless_on_fixture_models(path, tmp_path):
    from lcm_core import paths
    from lcm_core.graph import cli

    from lcm_core.models import configs

    prompt = json.loads((WORKFLOWS / "api" / path.name).read_text())
    root, models, inputs = fixture_folders(tmp_path, prompt)
    sizes = [f"{n}.{k}=64" for n, node in prompt.items() if node["class_type"] == "EmptyLatentImage"
             for k in ("width", "height")]
    out, report = tmp_path / "output", tmp_path / "report.json"
    common = ["--models-dir", str(models), "--input-dir", str(inputs), "--output-dir", str(out), "--device", "cpu"]
    args = [str(path), *common, "--report", str(report), *[a for s in sizes for a in ("--set", s)]]
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add contention
    try:
        with configs.use_root(root):
            code = cli.main(args)
            body = json.loads(report.read_text())
            assert code == 0, body["error"] or body["node_errors"]
            (output_id,) = body["outputs"]
            saved = out / body["outputs"][output_id]["images"][0]["filename"]
            assert set(read_png_chunks(saved)) >= {"prompt", "workflow"}
            if path.stem == "lcm_txt2img":  # the PNG is a workflow: running it gives the same pixels
                assert cli.main([str(saved), *common, "--report", str(report)]) == 0
                again = out / json.loads(report.read_text())["outputs"][output_id]["images"][0]["filename"]
                assert again != saved
                assert np.array_equal(np.asarray(Image.open(saved)), np.asarray(Image.open(again)))
    finally:
        torch.set_num_threads(threads)
        paths.configure(None)
