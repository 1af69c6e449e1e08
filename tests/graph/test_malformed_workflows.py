"""Malformed workflows: each is refused before anything runs, in ComfyUI's error shape,
naming the node and input, with exit code 1 and no file written."""

from __future__ import annotations

import copy
import json

import pytest

from lcm_core.graph import cli, registry
from lcm_core.graph.validate import validate_prompt
from support import dummy_nodes
from support.dummy_nodes import all_nodes, txt2img_prompt
from support.graph_env import folders  # noqa: F401  (fixture)

ERROR_KEYS = {"type", "message", "details", "extra_info"}


def _edit(**changes):
    """txt2img with `changes` = {"<node>.<input>": value | DELETE}."""
    prompt = txt2img_prompt()
    for key, value in changes.items():
        node, name = key.split(".", 1)
        if value is DELETE:
            del prompt[node]["inputs"][name]
        else:
            prompt[node]["inputs"][name] = value
    return prompt


DELETE = object()


def _with(**nodes):
    prompt = txt2img_prompt()
    prompt.update(nodes)
    return prompt


def _without(*ids):
    prompt = txt2img_prompt()
    for node_id in ids:
        del prompt[node_id]
    return prompt


def _renamed(node_id, class_type):
    prompt = txt2img_prompt()
    prompt[node_id]["class_type"] = class_type
    return prompt


def _chain_choice(name, link_to="4"):
    prompt = txt2img_prompt()
    prompt["7"] = {"class_type": "ChoiceNode", "inputs": {"name": name, "latent": [link_to, 0]}}
    prompt["5"]["inputs"]["samples"] = ["7", 0]
    return prompt


def _cycle():
    prompt = _chain_choice("a")
    prompt["4"]["inputs"]["latent_image"] = ["7", 0]
    return prompt


def _ui_unknown_node():
    return {"nodes": [{"id": 1, "type": "KSamplerAdvancedPlus", "mode": 0, "inputs": [], "outputs": [],
                       "widgets_values": [1]},
                      {"id": 2, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE",
                                                                             "link": None}], "widgets_values": ["x"]}],
            "links": [], "version": 0.4}


# (case id, file content (object → JSON, str → raw text), top error type, node id, node error type, input name)
CASES = [
    ("not_json", "{not json", "invalid_prompt", None, None, None),
    ("empty_file", "", "invalid_prompt", None, None, None),
    ("nan_literal", '{"1": {"class_type": "SaveImage", "inputs": {"x": NaN}}}', "invalid_prompt", None, None, None),
    ("top_level_list", [1, 2, 3], "invalid_prompt", None, None, None),
    ("top_level_string", "\"a prompt\"", "invalid_prompt", None, None, None),
    ("top_level_number", "42", "invalid_prompt", None, None, None),
    ("node_not_object", {"1": 5}, "invalid_prompt", None, None, None),
    ("missing_class_type", {"1": {"inputs": {}}}, "invalid_prompt", None, None, None),
    ("inputs_not_object", {"1": {"class_type": "SaveImage", "inputs": [1]}}, "invalid_prompt", None, None, None),
    ("empty_prompt", {}, "prompt_no_outputs", None, None, None),
    ("no_output_node", _without("6"), "prompt_no_outputs", None, None, None),
    ("unknown_class", _renamed("4", "LCMSamplr"), "invalid_prompt", "4", "invalid_prompt", None),
    ("unknown_class_ui", _ui_unknown_node(), "invalid_prompt", "1", "invalid_prompt", None),
    ("missing_required", _edit(**{"4.seed": DELETE}), "prompt_outputs_failed_validation", "4",
     "required_input_missing", "seed"),
    ("missing_required_link", _edit(**{"5.vae": DELETE}), "prompt_outputs_failed_validation", "5",
     "required_input_missing", "vae"),
    ("link_to_missing_node", _edit(**{"5.samples": ["99", 0]}), "prompt_outputs_failed_validation", "5",
     "bad_linked_input", "samples"),
    ("link_slot_out_of_range", _edit(**{"5.vae": ["1", 7]}), "prompt_outputs_failed_validation", "5",
     "bad_linked_input", "vae"),
    ("link_negative_slot", _edit(**{"5.vae": ["1", -1]}), "prompt_outputs_failed_validation", "5",
     "bad_linked_input", "vae"),
    ("link_wrong_length", _edit(**{"5.samples": ["4", 0, 1]}), "prompt_outputs_failed_validation", "5",
     "bad_linked_input", "samples"),
    ("link_type_mismatch", _edit(**{"5.samples": ["1", 0]}), "prompt_outputs_failed_validation", "5",
     "return_type_mismatch", "samples"),
    ("steps_below_min", _edit(**{"4.steps": 0}), "prompt_outputs_failed_validation", "4",
     "value_smaller_than_min", "steps"),
    ("steps_above_max", _edit(**{"4.steps": 1000}), "prompt_outputs_failed_validation", "4",
     "value_bigger_than_max", "steps"),
    ("huge_seed", _edit(**{"4.seed": 10**30}), "prompt_outputs_failed_validation", "4",
     "value_bigger_than_max", "seed"),
    ("negative_seed", _edit(**{"4.seed": -1}), "prompt_outputs_failed_validation", "4",
     "value_smaller_than_min", "seed"),
    ("huge_float", json.dumps(txt2img_prompt()).replace('"guidance_scale": 1.0', '"guidance_scale": 1e400'),
     "prompt_outputs_failed_validation", "4", "value_bigger_than_max", "guidance_scale"),
    ("huge_width", _edit(**{"3.width": 2**64}), "prompt_outputs_failed_validation", "3",
     "value_bigger_than_max", "width"),
    ("combo_not_in_list", _edit(**{"4.sampler_name": "euler"}), "prompt_outputs_failed_validation", "4",
     "value_not_in_list", "sampler_name"),
    ("checkpoint_not_in_list", _edit(**{"1.ckpt_name": "missing.safetensors"}), "prompt_outputs_failed_validation",
     "1", "value_not_in_list", "ckpt_name"),
    ("int_is_text", _edit(**{"4.steps": "four"}), "prompt_outputs_failed_validation", "4",
     "invalid_input_type", "steps"),
    ("int_is_bool", _edit(**{"4.steps": True}), "prompt_outputs_failed_validation", "4",
     "invalid_input_type", "steps"),
    ("int_is_fraction", _edit(**{"4.steps": 2.5}), "prompt_outputs_failed_validation", "4",
     "invalid_input_type", "steps"),
    ("float_is_text", _edit(**{"4.guidance_scale": "high"}), "prompt_outputs_failed_validation", "4",
     "invalid_input_type", "guidance_scale"),
    ("string_is_object", _edit(**{"2.text": {"a": 1}}), "prompt_outputs_failed_validation", "2",
     "invalid_input_type", "text"),
    ("string_is_null", _edit(**{"6.filename_prefix": None}), "prompt_outputs_failed_validation", "6",
     "invalid_input_type", "filename_prefix"),
    ("constant_for_link_type", _edit(**{"4.model": "model.safetensors"}), "prompt_outputs_failed_validation", "4",
     "invalid_input_type", "model"),
    ("custom_validation", _chain_choice("zzz"), "prompt_outputs_failed_validation", "7",
     "custom_validation_failed", "name"),
    ("self_cycle", _edit(**{"4.latent_image": ["4", 0]}), "prompt_outputs_failed_validation", "4",
     "dependency_cycle", None),
    ("two_node_cycle", _cycle(), "prompt_outputs_failed_validation", ("4", "7"), "dependency_cycle", None),
    ("load_missing_image", _with(**{"8": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
                                    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0],
                                                                                "filename_prefix": "x"}}}),
     "prompt_outputs_failed_validation", "8", "custom_validation_failed", "image"),
]


@pytest.fixture
def dummy_registry(monkeypatch):
    monkeypatch.setattr(registry, "node_classes", all_nodes)
    monkeypatch.setattr(registry, "display_names", lambda: {})


def _write(path, content):
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")


def _produced(folders):  # noqa: F811
    return [p for d in (folders.output_dir, folders.temp_dir) for p in d.rglob("*") if p.is_file()]


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_refuses_with_comfy_error_shape(case, folders, dummy_registry, tmp_path):  # noqa: F811
    name, content, top_type, node_id, node_type, input_name = case
    workflow, report = tmp_path / "wf.json", tmp_path / "report.json"
    _write(workflow, content)
    code = cli.main([str(workflow), "--report", str(report), "--junit", str(tmp_path / "junit.xml")])
    assert code == 1
    body = json.loads(report.read_text())
    assert body["status"] == "invalid"
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["type"] == top_type
    assert _produced(folders) == []
    assert dummy_nodes.CALLS == {}
    if node_id is None:
        assert body["node_errors"] == {}
        return
    node_ids = list(node_id) if isinstance(node_id, tuple) else [node_id]
    assert list(body["node_errors"]) == node_ids
    entry = body["node_errors"][node_ids[0]]
    assert set(entry) == {"errors", "dependent_outputs", "class_type"}
    assert entry["errors"][0]["type"] == node_type
    for item in entry["errors"]:
        assert set(item) == ERROR_KEYS
    if input_name is not None:
        assert entry["errors"][0]["extra_info"]["input_name"] == input_name
    if top_type == "prompt_outputs_failed_validation":
        assert entry["dependent_outputs"]


def test_unknown_class_lists_close_matches():
    result = validate_prompt(_renamed("4", "LCMSamplr"), all_nodes())
    info = result.node_errors["4"]["errors"][0]
    assert "LCMSampler" in info["extra_info"]["close_matches"]
    assert "LCMSampler" in info["details"]
    assert info["message"] == "Cannot execute because node LCMSamplr does not exist."


def test_errors_match_comfyui_messages():
    result = validate_prompt(_edit(**{"4.steps": 0, "5.vae": ["1", 0]}), all_nodes())
    steps = result.node_errors["4"]["errors"][0]
    assert (steps["message"], steps["details"]) == ("Value 0 smaller than min of 1", "steps")
    mismatch = result.node_errors["5"]["errors"][0]
    assert mismatch["message"] == "Return type mismatch between linked nodes"
    assert mismatch["details"] == "vae, received_type(LCM_MODEL) mismatch input_type(LCM_VAE)"
    assert mismatch["extra_info"]["linked_node"] == ["1", 0]


def test_only_outputs_depending_on_a_bad_node_list_it():
    prompt = txt2img_prompt()
    prompt["7"] = {"class_type": "LCMVAEDecode", "inputs": {"vae": ["1", 2], "samples": ["3", 0]}}
    prompt["8"] = {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}}
    prompt["4"]["inputs"]["steps"] = 0
    result = validate_prompt(prompt, all_nodes(), strict=False)
    assert result.ok and result.outputs == ["8"]
    assert result.node_errors["4"]["dependent_outputs"] == ["6"]
    assert not validate_prompt(prompt, all_nodes()).ok


def test_validation_does_not_mutate_and_converts_values():
    prompt = _edit(**{"4.steps": 3.0, "4.guidance_scale": 2, "2.text": {"__value__": "wrapped"}})
    before = copy.deepcopy(prompt)
    result = validate_prompt(prompt, all_nodes())
    assert prompt == before
    assert result.prompt["4"]["inputs"]["steps"] == 3 and isinstance(result.prompt["4"]["inputs"]["steps"], int)
    assert isinstance(result.prompt["4"]["inputs"]["guidance_scale"], float)
    assert result.prompt["2"]["inputs"]["text"] == "wrapped"


@pytest.mark.parametrize("override, node_type", [
    ("4.steps=abc", "invalid_input_type"),
    ("4.steps=0", "value_smaller_than_min"),
    ("4.sampler_name=euler", "value_not_in_list"),
])
def test_set_values_are_validated_like_widgets(override, node_type, folders, dummy_registry, tmp_path):  # noqa: F811
    workflow, report = tmp_path / "wf.json", tmp_path / "r.json"
    _write(workflow, txt2img_prompt())
    assert cli.main([str(workflow), "--set", override, "--report", str(report)]) == 1
    assert json.loads(report.read_text())["node_errors"]["4"]["errors"][0]["type"] == node_type
    assert _produced(folders) == []


@pytest.mark.parametrize("override", ["99.seed=1", "seed=1", "4.seed"])
def test_bad_set_targets_are_invalid(override, folders, dummy_registry, tmp_path):  # noqa: F811
    workflow, report = tmp_path / "wf.json", tmp_path / "r.json"
    _write(workflow, txt2img_prompt())
    assert cli.main([str(workflow), "--set", override, "--report", str(report)]) == 1
    assert json.loads(report.read_text())["error"]["type"] == "lcm_error"


def test_binary_and_unreadable_files(folders, dummy_registry, tmp_path):  # noqa: F811
    garbage = tmp_path / "x.json"
    garbage.write_bytes(b"\xff\xfe\x00garbage")
    assert cli.main([str(garbage)]) == 1
    assert cli.main([str(tmp_path / "missing.json")]) == 1
    blank_png = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(blank_png)
    report = tmp_path / "r.json"
    assert cli.main([str(blank_png), "--report", str(report)]) == 1
    assert "no 'prompt' or 'workflow'" in json.loads(report.read_text())["error"]["message"]
