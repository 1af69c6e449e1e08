"""The training example workflow (teacher → Distill LCM-LoRA → LCM Sampler → Save Image,
plus the loss curve) converts to its API copy and runs headless with `lcm-run` on a tiny
fixture checkpoint and a generated dataset."""

from __future__ import annotations

import json

import pytest
import torch

from lcm_core.graph import registry
from lcm_core.graph.convert import ui_to_api
from support.host import PACK_ROOT
from support.training_models import write_dataset
from support.workflow_fixtures import fixture_folders

UI = PACK_ROOT / "workflows" / "training" / "lcm_lora_distill.json"
API = PACK_ROOT / "workflows" / "training" / "api" / "lcm_lora_distill.json"


def test_ui_converts_to_the_checked_in_api_file():
    classes, names = registry.node_classes(), registry.display_names()
    assert ui_to_api(json.loads(UI.read_text()), classes, names) == json.loads(API.read_text())


@pytest.mark.slow
def test_train_apply_sample_save_runs_headless(tmp_path, monkeypatch):
    from lcm_core import paths
    from lcm_core.graph import cli
    from lcm_core.models import configs

    monkeypatch.chdir(tmp_path)  # PreviewImage writes to ./temp headless
    prompt = json.loads(API.read_text())
    root, models, inputs = fixture_folders(tmp_path, prompt)
    write_dataset(inputs / "lcm_dataset", 2, size=64)
    out, report = tmp_path / "output", tmp_path / "report.json"
    sets = ["2.steps=3", "2.resolution=64", "2.batch_size=2", "2.lora_rank=4", "4.width=64", "4.height=64"]
    args = [str(UI), "--models-dir", str(models), "--input-dir", str(inputs), "--output-dir", str(out),
            "--device", "cpu", "--report", str(report), *[a for s in sets for a in ("--set", s)]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with configs.use_root(root):
            code = cli.main(args)
        body = json.loads(report.read_text())
        assert code == 0, body["error"] or body["node_errors"]
        assert set(body["outputs"]) == {"7", "8"}, "the sample and the loss curve"
        assert (models / "loras" / "my_lcm_lora.safetensors").is_file()
        assert (out / body["outputs"]["7"]["images"][0]["filename"]).is_file()
    finally:
        torch.set_num_threads(threads)
        paths.configure(None)
