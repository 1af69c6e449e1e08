"""The example workflows: each UI file converts to exactly its checked-in API copy, and
runs with `lcm-run` on tiny fixture models once the real nodes are registered."""

from __future__ import annotations

import json

import pytest

from lcm_core.graph import registry
from lcm_core.graph.convert import ui_to_api
from lcm_core.graph.formats import read_png_chunks
from support import dummy_nodes
from support.host import PACK_ROOT

WORKFLOWS = PACK_ROOT / "workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
PACK_NODES = {"LCMCheckpointLoader", "LCMLoraLoader", "LCMTextEncode", "LCMSampler", "LCMVAEDecode", "LCMVAEEncode"}


def node_set() -> tuple[dict, dict]:
    """The real node classes once they are all registered, else the dummies that follow
    DESIGN.md's input order (so the example files are checked either way)."""
    real = registry.node_classes()
    if PACK_NODES <= set(real):
        return real, registry.display_names()
    return dummy_nodes.all_nodes(), dummy_nodes.NODE_DISPLAY_NAME_MAPPINGS


def test_every_ui_workflow_has_an_api_copy():
    assert [p.name for p in UI_FILES] == sorted(p.name for p in (WORKFLOWS / "api").glob("*.json"))
    assert {"lcm_txt2img.json", "sd15_lcm_lora_style.json", "sdxl_lcm_lora.json", "lcm_img2img.json"} <= {
        p.name for p in UI_FILES}


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_ui_converts_to_the_checked_in_api_file(path):
    classes, names = node_set()
    expected = json.loads((WORKFLOWS / "api" / path.name).read_text())
    assert ui_to_api(json.loads(path.read_text()), classes, names) == expected


FIXTURE_CHECKPOINTS = {  # name in the example workflows → (family, LCM-distilled)
    "LCM_Dreamshaper_v7.safetensors": ("sd15", True),
    "v1-5-pruned-emaonly.safetensors": ("sd15", False),
    "sd_xl_base_1.0.safetensors": ("sdxl", False),
}
FIXTURE_LORAS = {  # LoRA name → (checkpoint it fits, patches the text encoder too)
    "lcm-lora-sdv1-5.safetensors": ("v1-5-pruned-emaonly.safetensors", False),
    "papercut.safetensors": ("v1-5-pruned-emaonly.safetensors", True),
    "lcm-lora-sdxl.safetensors": ("sd_xl_base_1.0.safetensors", False),
}


def write_peft_lora(path, components: dict, with_text_encoder: bool, rank: int = 2, seed: int = 0) -> None:
    """A diffusers/PEFT-named LoRA on every attention projection of the tiny modules."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    owners = [("unet", components["unet"], ("to_q", "to_k", "to_v", "to_out.0"))]
    if with_text_encoder:
        owners.append(("text_encoder", components["text_encoder"], ("q_proj", "k_proj", "v_proj", "out_proj")))
    state = {}
    for prefix, module, suffixes in owners:
        for name, layer in module.named_modules():
            if isinstance(layer, torch.nn.Linear) and name.endswith(suffixes):
                state[f"{prefix}.{name}.lora_A.weight"] = torch.randn(rank, layer.in_features, generator=g) * 0.1
                state[f"{prefix}.{name}.lora_B.weight"] = torch.randn(layer.out_features, rank, generator=g) * 0.1
    save_file(state, str(path))


def fixture_folders(tmp_path, prompt: dict):
    """Tiny checkpoints and LoRAs under the names `prompt` uses, and an input image."""
    import numpy as np
    from PIL import Image

    checkpoints = pytest.importorskip("support.checkpoints", reason="fixture writers come with the models branch")
    root = checkpoints.write_tiny_configs(tmp_path / "configs")
    models, inputs = tmp_path / "models", tmp_path / "input"
    for sub in ("checkpoints", "loras"):
        (models / sub).mkdir(parents=True)
    inputs.mkdir()
    used = {v for node in prompt.values() for v in node["inputs"].values() if isinstance(v, str)}
    written = {}
    for name, (family, lcm) in FIXTURE_CHECKPOINTS.items():
        if name in used or any(FIXTURE_LORAS[lora][0] == name for lora in FIXTURE_LORAS if lora in used):
            written[name] = checkpoints.write_single_file(models / "checkpoints" / name, family, root, lcm=lcm)
    for name, (base, text) in FIXTURE_LORAS.items():
        if name in used:
            write_peft_lora(models / "loras" / name, written[base], text)
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(inputs / "example.png")
    return root, models, inputs


@pytest.mark.parametrize("path", UI_FILES, ids=[p.stem for p in UI_FILES])
def test_runs_headless_on_fixture_models(path, tmp_path):
    from lcm_core import paths
    from lcm_core.graph import cli

    if not PACK_NODES <= set(registry.node_classes()):
        pytest.skip("the real LCM nodes are not all registered yet")
    prompt = json.loads((WORKFLOWS / "api" / path.name).read_text())
    root, models, inputs = fixture_folders(tmp_path, prompt)
    configs = pytest.importorskip("lcm_core.models.configs")
    sizes = [f"{n}.{k}=64" for n, node in prompt.items() if node["class_type"] == "EmptyLatentImage"
             for k in ("width", "height")]
    out, report = tmp_path / "output", tmp_path / "report.json"
    args = [str(path), "--models-dir", str(models), "--input-dir", str(inputs), "--output-dir", str(out),
            "--device", "cpu", "--report", str(report), *[a for s in sizes for a in ("--set", s)]]
    try:
        with configs.use_root(root):
            code = cli.main(args)
    finally:
        paths.configure(None)
    body = json.loads(report.read_text())
    assert code == 0, body["error"] or body["node_errors"]
    (images,) = [ui["images"] for ui in body["outputs"].values()]
    saved = out / images[0]["filename"]
    assert saved.is_file() and set(read_png_chunks(saved)) >= {"prompt", "workflow"}
