"""Executor semantics: order, caching by input signature, IS_CHANGED, errors, interruption, events."""

from __future__ import annotations

import torch

from lcm_core.graph.events import EVENT_NAMES, Event, EventLog
from lcm_core.graph.execute import Executor, execution_order
from support import dummy_nodes
from support.dummy_nodes import CALLS, all_nodes, txt2img_prompt
from support.graph_env import folders  # noqa: F401  (fixture)


def test_second_run_with_new_seed_runs_only_sampler_and_after(folders):  # noqa: F811
    executor = Executor(all_nodes())
    first = executor.run(txt2img_prompt(seed=1))
    assert first.ok and first.executed == ["1", "2", "3", "4", "5", "6"]
    CALLS.clear()
    second = executor.run(txt2img_prompt(seed=2))
    assert second.ok
    assert second.executed == ["4", "5", "6"]
    assert second.cached == ["1", "2", "3"]
    assert dict(CALLS) == {"LCMSampler": 1, "LCMVAEDecode": 1}
    assert len(list(folders.output_dir.glob("test_*.png"))) == 2


def test_changed_prompt_reencodes_only_the_text(folders):  # noqa: F811
    executor = Executor(all_nodes())
    executor.run(txt2img_prompt())
    CALLS.clear()
    result = executor.run(txt2img_prompt(text="a dog"))
    assert result.executed == ["2", "4", "5", "6"]
    assert "LCMCheckpointLoader" not in CALLS


def test_identical_rerun_is_fully_cached_and_keeps_ui(folders):  # noqa: F811
    executor = Executor(all_nodes())
    first = executor.run(txt2img_prompt())
    CALLS.clear()
    again = executor.run(txt2img_prompt())
    assert again.executed == [] and not CALLS
    assert again.outputs == first.outputs
    assert again.cached == ["1", "2", "3", "4", "5", "6"]


def test_cache_is_per_executor(folders):  # noqa: F811
    Executor(all_nodes()).run(txt2img_prompt())
    CALLS.clear()
    Executor(all_nodes()).run(txt2img_prompt())
    assert CALLS["LCMCheckpointLoader"] == 1


def _choice_prompt():
    prompt = txt2img_prompt()
    prompt["7"] = {"class_type": "ChoiceNode", "inputs": {"name": "c", "latent": ["4", 0]}}
    prompt["5"]["inputs"]["samples"] = ["7", 0]
    return prompt


def test_is_changed_reruns_the_node_and_downstream_only(folders):  # noqa: F811
    executor = Executor(all_nodes())
    dummy_nodes.ChoiceNode.VERSION["value"] = 0
    executor.run(_choice_prompt())
    CALLS.clear()
    assert executor.run(_choice_prompt()).executed == []
    dummy_nodes.ChoiceNode.VERSION["value"] = 1
    result = executor.run(_choice_prompt())
    dummy_nodes.ChoiceNode.VERSION["value"] = 0
    assert result.executed == ["7", "5", "6"]


def test_validate_inputs_replaces_the_combo_check(folders):  # noqa: F811
    assert Executor(all_nodes()).run(_choice_prompt()).ok  # "c" is not in the combo, VALIDATE_INPUTS allows it


def test_only_ancestors_of_outputs_run(folders):  # noqa: F811
    prompt = txt2img_prompt()
    prompt["9"] = {"class_type": "LCMTextEncode", "inputs": {"clip": ["1", 1], "text": "unused"}}
    result = Executor(all_nodes()).run(prompt)
    assert "9" not in result.executed
    assert execution_order(prompt, ["6"]) == ["1", "2", "3", "4", "5", "6"]


def _two_outputs_second_fails():
    prompt = txt2img_prompt()
    prompt["7"] = {"class_type": "FailingNode", "inputs": {"samples": ["4", 0]}}
    prompt["8"] = {"class_type": "LCMVAEDecode", "inputs": {"vae": ["1", 2], "samples": ["7", 0]}}
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    return prompt


def test_node_exception_is_reported_with_comfy_fields_and_saved_outputs_stay(folders):  # noqa: F811
    log = EventLog()
    result = Executor(all_nodes(), emit=log).run(_two_outputs_second_fails())
    assert result.status == "error"
    error = result.error
    assert {"prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type", "traceback",
            "current_inputs", "current_outputs", "timestamp"} <= set(error)
    assert (error["node_id"], error["node_type"]) == ("7", "FailingNode")
    assert error["exception_type"] == "RuntimeError" and error["exception_message"] == "dummy failure"
    assert any("dummy_nodes.py" in line for line in error["traceback"])
    assert error["current_inputs"]["samples"][0].startswith("{'samples'")
    assert error["executed"] == ["1", "2", "3", "4", "5", "6"]
    assert result.outputs["6"]["images"][0]["filename"] == "test_00001_.png"
    assert (folders.output_dir / "test_00001_.png").is_file()
    assert log.names()[-1] == "execution_error" and log.events[-1].data is error


def test_failed_node_runs_again_next_time(folders):  # noqa: F811
    executor = Executor(all_nodes())
    executor.run(_two_outputs_second_fails())
    CALLS.clear()
    executor.run(_two_outputs_second_fails())
    assert dict(CALLS) == {"FailingNode": 1}


def test_interrupt_during_sampling(folders):  # noqa: F811
    executor = Executor(all_nodes())
    log = EventLog()

    def sink(event: Event) -> None:
        log(event)
        if event.name == "progress" and event.data["value"] == 1:
            executor.interrupt()

    executor.emit = sink
    result = executor.run(txt2img_prompt(steps=4))
    assert result.status == "interrupted"
    assert result.error["node_id"] == "4" and result.error["node_type"] == "LCMSampler"
    assert [e.data["value"] for e in log.events if e.name == "progress"] == [1]
    assert log.names()[-1] == "execution_interrupted"
    assert not list(folders.output_dir.glob("*.png"))
    executor.emit = log
    assert executor.run(txt2img_prompt(steps=4)).ok  # the flag is cleared for the next run


def test_events_are_comfyui_messages_in_order(folders):  # noqa: F811
    log = EventLog()
    Executor(all_nodes(), emit=log).run(txt2img_prompt(steps=2), prompt_id="p1")
    assert set(log.names()) <= set(EVENT_NAMES)
    assert log.names()[:2] == ["execution_start", "execution_cached"]
    assert log.names()[-2:] == ["execution_success", "executing"]
    executing = [e.data["node"] for e in log.events if e.name == "executing"]
    assert executing == ["1", "2", "3", "4", "5", "6", None]
    progress = [e.data for e in log.events if e.name == "progress"]
    assert progress == [{"value": 1, "max": 2, "prompt_id": "p1", "node": "4"},
                        {"value": 2, "max": 2, "prompt_id": "p1", "node": "4"}]
    executed = [e for e in log.events if e.name == "executed"]
    assert [e.data["node"] for e in executed] == ["6"]
    assert executed[0].to_ws()["data"]["output"]["images"][0]["type"] == "output"
    assert all(e.data["prompt_id"] == "p1" for e in log.events)


def test_hidden_inputs_and_outputs_are_passed_like_comfyui(folders):  # noqa: F811
    seen = {}

    class Probe:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"latent": ("LATENT", {"tooltip": "x"})},
                    "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"}}

        RETURN_TYPES = ()
        OUTPUT_NODE = True
        FUNCTION = "probe"

        def probe(self, latent, prompt, extra_pnginfo, unique_id):
            seen.update(prompt=prompt, extra=extra_pnginfo, uid=unique_id, shape=tuple(latent["samples"].shape))
            return {"ui": {"text": ["ok"]}}

    prompt = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 32, "batch_size": 2}},
              "2": {"class_type": "Probe", "inputs": {"latent": ["1", 0]}}}
    result = Executor({**all_nodes(), "Probe": Probe}).run(prompt, extra_pnginfo={"workflow": {"nodes": []}})
    assert result.outputs == {"2": {"text": ["ok"]}}
    assert seen["uid"] == "2" and seen["extra"] == {"workflow": {"nodes": []}}
    assert seen["prompt"]["1"]["inputs"]["width"] == 64
    assert seen["shape"] == (2, 4, 4, 8)


def test_wrong_number_of_returns_is_an_execution_error(folders):  # noqa: F811
    class Bad:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        RETURN_TYPES = ("LATENT", "LATENT")
        FUNCTION = "go"

        def go(self):
            return ({"samples": torch.zeros(1, 4, 8, 8)},)

    prompt = {"1": {"class_type": "Bad", "inputs": {}},
              "2": {"class_type": "LCMVAEDecode", "inputs": {"vae": ["3", 2], "samples": ["1", 0]}},
              "3": {"class_type": "LCMCheckpointLoader", "inputs": {"ckpt_name": "tiny-lcm.safetensors",
                                                                    "dtype": "auto"}},
              "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    result = Executor({**all_nodes(), "Bad": Bad}).run(prompt)
    assert result.status == "error" and result.error["node_id"] == "1"
    assert "RETURN_TYPES declares 2" in result.error["exception_message"]
