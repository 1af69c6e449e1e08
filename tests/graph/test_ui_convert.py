"""UI (graph) → API conversion follows the frontend's graphToPrompt."""

from __future__ import annotations

import copy

import pytest

from lcm_core.errors import WorkflowError
from lcm_core.graph.convert import ui_to_api, widget_layout
from support.dummy_nodes import all_nodes

NODES = all_nodes()
NAMES = {"LCMCheckpointLoader": "Load LCM Checkpoint", "SaveImage": "Save Image"}


def _node(node_id, kind, inputs=(), outputs=(), widgets=None, mode=0, **extra):
    node = {"id": node_id, "type": kind, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": node_id,
            "mode": mode, "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs],
            "properties": {"Node name for S&R": kind}}
    if widgets is not None:
        node["widgets_values"] = widgets
    node.update(extra)
    return node


def _in(name, kind, link=None, widget=None):
    slot = {"name": name, "type": kind, "link": link}
    if widget:
        slot["widget"] = {"name": widget}
    return slot


def ui_workflow() -> dict:
    """A txt2img graph using every feature the frontend folds away."""
    links = [
        [1, 1, 0, 10, 0, "*"],               # model → reroute
        [2, 10, 0, 4, 0, "LCM_MODEL"],       # reroute → sampler.model
        [3, 1, 1, 2, 0, "LCM_CLIP"],
        [4, 2, 0, 4, 1, "LCM_CONDITIONING"],
        [5, 3, 0, 4, 2, "LATENT"],
        [6, 11, 0, 4, 4, "INT"],             # primitive → sampler.seed (converted widget)
        [7, 4, 0, 12, 0, "LATENT"],          # sampler → bypassed ChoiceNode
        [8, 12, 0, 5, 1, "LATENT"],          # bypassed → decode.samples
        [9, 1, 2, 5, 0, "LCM_VAE"],
        [10, 5, 0, 6, 0, "IMAGE"],
        [11, 5, 0, 8, 0, "IMAGE"],           # → muted preview
        [12, 13, 0, 4, 3, "LCM_CONDITIONING"],  # muted encoder → sampler.negative
        [13, 1, 1, 13, 0, "LCM_CLIP"],
        [14, 14, 0, 4, 5, "INT"],            # IntConstant → sampler.steps (converted widget)
    ]
    nodes = [
        _node(1, "LCMCheckpointLoader", outputs=[{"name": "model", "type": "LCM_MODEL", "links": [1]},
                                                 {"name": "clip", "type": "LCM_CLIP", "links": [3, 13]},
                                                 {"name": "vae", "type": "LCM_VAE", "links": [9]}],
              widgets=["tiny-lcm.safetensors", "auto"]),
        _node(2, "LCMTextEncode", inputs=[_in("clip", "LCM_CLIP", 3)], widgets=["a cat"]),
        _node(3, "EmptyLatentImage", widgets=[64, 64, 1]),
        _node(4, "LCMSampler",
              inputs=[_in("model", "LCM_MODEL", 2), _in("positive", "LCM_CONDITIONING", 4),
                      _in("latent_image", "LATENT", 5), _in("negative", "LCM_CONDITIONING", 12),
                      _in("seed", "INT", 6, widget="seed"), _in("steps", "INT", 14, widget="steps")],
              widgets=[5, "randomize", 3, 1.5, 1.0, "tcd", 50, 0.3, ""]),
        _node(5, "LCMVAEDecode", inputs=[_in("vae", "LCM_VAE", 9), _in("samples", "LATENT", 8)]),
        _node(6, "SaveImage", inputs=[_in("images", "IMAGE", 10)], widgets=["test"], title="My Save"),
        _node(7, "Note", widgets=["remember the milk"]),
        _node(8, "PreviewImage", inputs=[_in("images", "IMAGE", 11)], mode=2),
        _node(10, "Reroute", inputs=[_in("", "*", 1)], outputs=[{"name": "", "type": "LCM_MODEL", "links": [2]}]),
        _node(11, "PrimitiveNode", outputs=[{"name": "INT", "type": "INT", "links": [6],
                                             "widget": {"name": "seed"}}], widgets=[42, "fixed"]),
        _node(12, "ChoiceNode", inputs=[_in("latent", "LATENT", 7)], widgets=["a"], mode=4),
        _node(13, "LCMTextEncode", inputs=[_in("clip", "LCM_CLIP", 13)], widgets=["ugly"], mode=2),
        _node(14, "IntConstant", widgets=[6]),
        _node(15, "MarkdownNote", widgets=["# docs"]),
    ]
    return {"last_node_id": 15, "last_link_id": 14, "nodes": nodes, "links": links,
            "groups": [{"title": "Group", "bounding": [0, 0, 10, 10]}], "config": {}, "extra": {}, "version": 0.4}


EXPECTED = {
    "1": {"inputs": {"ckpt_name": "tiny-lcm.safetensors", "dtype": "auto", "base_ckpt_name": "none"}, "class_type": "LCMCheckpointLoader",
          "_meta": {"title": "Load LCM Checkpoint"}},
    "2": {"inputs": {"text": "a cat", "clip": ["1", 1]}, "class_type": "LCMTextEncode",
          "_meta": {"title": "LCMTextEncode"}},
    "3": {"inputs": {"width": 64, "height": 64, "batch_size": 1}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "EmptyLatentImage"}},
    "4": {"inputs": {"seed": 42, "steps": ["14", 0], "guidance_scale": 1.5, "denoise": 1.0, "sampler_name": "tcd",
                     "original_inference_steps": 50, "tcd_gamma": 0.3, "timesteps": "", "model": ["1", 0],
                     "positive": ["2", 0], "latent_image": ["3", 0]},
          "class_type": "LCMSampler", "_meta": {"title": "LCMSampler"}},
    "5": {"inputs": {"vae": ["1", 2], "samples": ["4", 0]}, "class_type": "LCMVAEDecode",
          "_meta": {"title": "LCMVAEDecode"}},
    "6": {"inputs": {"filename_prefix": "test", "images": ["5", 0]}, "class_type": "SaveImage",
          "_meta": {"title": "My Save"}},
    "14": {"inputs": {"value": 6}, "class_type": "IntConstant", "_meta": {"title": "IntConstant"}},
}


def test_array_links_fold_reroute_primitive_muted_bypassed_notes():
    assert ui_to_api(ui_workflow(), NODES, NAMES) == EXPECTED


def test_schema_1_link_objects_give_the_same_prompt():
    workflow = ui_workflow()
    keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    workflow["links"] = [dict(zip(keys, link)) for link in workflow["links"]]
    workflow["version"] = 1
    workflow["state"] = {"lastNodeId": 15, "lastLinkId": 14}
    assert ui_to_api(workflow, NODES, NAMES) == EXPECTED


def test_widget_sockets_without_links_keep_widget_values():
    workflow = ui_workflow()
    encoder = next(n for n in workflow["nodes"] if n["id"] == 2)
    encoder["inputs"].append(_in("text", "STRING", None, widget="text"))
    assert ui_to_api(workflow, NODES, NAMES) == EXPECTED


def test_bypass_matches_by_type_when_the_same_slot_differs():
    workflow = ui_workflow()
    bypassed = next(n for n in workflow["nodes"] if n["id"] == 12)
    bypassed["type"] = "LCMLoraLoader"
    bypassed["inputs"] = [_in("model", "LCM_MODEL", None), _in("latent", "LATENT", 7)]
    bypassed["widgets_values"] = ["style.safetensors", 1.0, 1.0, "auto"]
    assert ui_to_api(workflow, NODES, NAMES)["5"]["inputs"]["samples"] == ["4", 0]


def test_muted_origin_of_a_converted_widget_drops_the_input_like_the_frontend():
    workflow = ui_workflow()
    next(n for n in workflow["nodes"] if n["id"] == 14)["mode"] = 2
    assert "steps" not in ui_to_api(workflow, NODES, NAMES)["4"]["inputs"]


def test_list_widget_values_are_wrapped():
    workflow = {"nodes": [_node(1, "LCMTextEncode", widgets=[["a", "b"]])], "links": []}
    assert ui_to_api(workflow, NODES)["1"]["inputs"]["text"] == {"__value__": ["a", "b"]}


def test_bypass_without_a_matching_type_drops_the_input():
    workflow = ui_workflow()
    bypassed = next(n for n in workflow["nodes"] if n["id"] == 12)
    bypassed["inputs"] = [_in("latent", "IMAGE", 7)]
    assert "samples" not in ui_to_api(workflow, NODES, NAMES)["5"]["inputs"]


@pytest.mark.parametrize("values, expected", [
    (["photo.png", "image"], {"image": "photo.png"}),  # the upload button's stored value
    (["photo.png"], {"image": "photo.png"}),
])
def test_load_image_upload_value_is_skipped(values, expected):
    workflow = {"nodes": [_node(1, "LoadImage", widgets=values)], "links": []}
    assert ui_to_api(workflow, NODES)["1"]["inputs"] == expected


def test_seed_layout_has_control_after_generate():
    full, bare = widget_layout(NODES["LCMSampler"].INPUT_TYPES())
    assert full[:3] == ["seed", None, "steps"]
    assert bare[:2] == ["seed", "steps"]


def test_widgets_missing_from_the_file_get_their_defaults_like_the_editor():
    workflow = {"nodes": [_node(1, "LCMLoraLoader", widgets=["style.safetensors", 0.5]),
                          _node(2, "LCMCheckpointLoader", widgets=["tiny-sd15.safetensors"])], "links": []}
    prompt = ui_to_api(workflow, NODES)
    assert prompt["1"]["inputs"] == {"lora_name": "style.safetensors", "strength_model": 0.5,
                                     "strength_clip": 1.0, "lora_kind": "auto"}
    assert prompt["2"]["inputs"] == {"ckpt_name": "tiny-sd15.safetensors", "dtype": "auto", "base_ckpt_name": "none"}


def test_sampler_without_control_value_still_maps():
    workflow = {"nodes": [_node(4, "LCMSampler", widgets=[7, 2, 1.0, 1.0, "lcm", 50, 0.3, ""])], "links": []}
    assert ui_to_api(workflow, NODES)["4"]["inputs"]["steps"] == 2


def test_unknown_node_types_are_kept_for_validation_to_report():
    workflow = {"nodes": [_node(1, "NotARealNode", widgets=[1])], "links": []}
    assert ui_to_api(workflow, NODES)["1"]["class_type"] == "NotARealNode"


def test_subgraphs_are_refused_clearly():
    workflow = {"nodes": [_node(1, "0b1c-sub", widgets=[])], "links": [],
                "definitions": {"subgraphs": [{"id": "0b1c-sub"}]}}
    with pytest.raises(WorkflowError, match="subgraph"):
        ui_to_api(workflow, NODES)


def test_input_is_not_mutated():
    workflow = ui_workflow()
    before = copy.deepcopy(workflow)
    ui_to_api(workflow, NODES, NAMES)
    assert workflow == before
