"""`lcm-run`: exit codes, --set, reports, PNG round trip, and no model loading for
--help / --list-nodes / --validate-only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from lcm_core.graph import cli, registry
from lcm_core.graph.events import Event
from lcm_core.graph.formats import read_png_chunks
from support import dummy_nodes
from support.dummy_nodes import CALLS, all_nodes, txt2img_prompt
from support.graph_env import folders  # noqa: F401  (fixture)
from support.host import PACK_ROOT

from test_ui_convert import ui_workflow


@pytest.fixture
def dummy_registry(monkeypatch):
    monkeypatch.setattr(registry, "node_classes", all_nodes)
    monkeypatch.setattr(registry, "display_names", lambda: {"LCMCheckpointLoader": "Load LCM Checkpoint"})


def _run(tmp_path, folders, content, *extra):  # noqa: F811
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps(content))
    return cli.main([str(workflow), "--output-dir", str(folders.output_dir), *extra])


def test_success_exit_0_with_reports(tmp_path, folders, dummy_registry):  # noqa: F811
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    code = _run(tmp_path, folders, txt2img_prompt(), "--report", str(report), "--junit", str(junit))
    assert code == 0
    body = json.loads(report.read_text())
    assert body["status"] == "success" and body["error"] is None
    assert body["outputs"] == {"6": {"images": [{"filename": "test_00001_.png", "subfolder": "", "type": "output"}]}}
    assert set(body["timings"]) == {"1", "2", "3", "4", "5", "6"}
    assert body["timings"]["4"]["class_type"] == "LCMSampler" and body["timings"]["4"]["seconds"] > 0
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert suite.find("testcase").get("name") == "wf.json#6"


def test_execution_error_exit_2_keeps_saved_image(tmp_path, folders, dummy_registry):  # noqa: F811
    prompt = txt2img_prompt()
    prompt["7"] = {"class_type": "FailingNode", "inputs": {"samples": ["4", 0]}}
    prompt["8"] = {"class_type": "LCMVAEDecode", "inputs": {"vae": ["1", 2], "samples": ["7", 0]}}
    prompt["9"] = {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "never"}}
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    assert _run(tmp_path, folders, prompt, "--report", str(report), "--junit", str(junit)) == 2
    body = json.loads(report.read_text())
    assert body["status"] == "error" and body["error"]["node_id"] == "7"
    assert sorted(p.name for p in folders.output_dir.iterdir()) == ["test_00001_.png"]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["wf.json#6"].find("failure") is None
    failure = cases["wf.json#9"].find("failure")
    assert failure is not None and "dummy failure" in failure.get("message")


def test_interrupt_exit_130(tmp_path, folders, dummy_registry, monkeypatch):  # noqa: F811
    original = dummy_nodes.LCMSampler.sample

    def sample_then_ctrl_c(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during sampling
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dummy_nodes.LCMSampler, "sample", sample_then_ctrl_c)
    report = tmp_path / "r.json"
    assert _run(tmp_path, folders, txt2img_prompt(), "--report", str(report)) == 130
    body = json.loads(report.read_text())
    assert body["status"] == "interrupted" and body["error"]["node_id"] == "4"
    assert list(folders.output_dir.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_set_overrides_seed_and_text(tmp_path, folders, dummy_registry):  # noqa: F811
    assert _run(tmp_path, folders, txt2img_prompt(), "--set", "4.seed=7", "--set", "2.text=a dog") == 0
    chunk = json.loads(read_png_chunks(folders.output_dir / "test_00001_.png")["prompt"])
    assert chunk["4"]["inputs"]["seed"] == 7 and chunk["2"]["inputs"]["text"] == "a dog"


def test_validate_only_runs_nothing_and_flags_configure_the_engine(tmp_path, folders, dummy_registry,  # noqa: F811
                                                                   monkeypatch):
    from lcm_core import paths

    monkeypatch.setenv("LCM_DEVICE", "auto")
    models = tmp_path / "my-models"
    assert _run(tmp_path, folders, txt2img_prompt(), "--validate-only", "--device", "cpu",
                "--models-dir", str(models)) == 0
    assert not CALLS and list(folders.output_dir.iterdir()) == []
    assert os.environ["LCM_DEVICE"] == "cpu"
    assert paths.folders("checkpoints")[0] == models / "checkpoints"
    assert paths.folders("output") == [folders.output_dir]


def test_png_round_trip_reproduces_the_image_bit_for_bit(tmp_path, folders, dummy_registry):  # noqa: F811
    workflow = ui_workflow()
    assert _run(tmp_path, folders, workflow) == 0
    first = folders.output_dir / "test_00001_.png"
    chunks = read_png_chunks(first)
    assert json.loads(chunks["workflow"]) == workflow
    prompt = json.loads(chunks["prompt"])
    assert prompt["4"]["inputs"]["seed"] == 42 and prompt["6"]["_meta"]["title"] == "My Save"
    assert cli.main([str(first), "--output-dir", str(folders.output_dir)]) == 0
    second = folders.output_dir / "test_00002_.png"
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))
    assert read_png_chunks(second) == chunks


def _python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=PACK_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_list_and_validate_only_import_no_torch(tmp_path):
    image = tmp_path / "input" / "in.png"
    image.parent.mkdir()
    Image.new("RGB", (8, 8)).save(image)
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps({
        "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}))
    result = _python(f"""
        import contextlib, io, json, sys
        from lcm_core.graph import cli
        codes = []
        with contextlib.redirect_stdout(io.StringIO()) as listing, contextlib.redirect_stderr(io.StringIO()):
            try:
                cli.main(["--help"])
            except SystemExit as ex:
                codes.append(ex.code)
            codes.append(cli.main(["--list-nodes"]))
            codes.append(cli.main([{str(workflow)!r}, "--validate-only", "--input-dir", {str(image.parent)!r}]))
            codes.append(cli.main([{str(PACK_ROOT / "workflows" / "sd15_lcm_lora_style.json")!r}, "--validate-only",
                                   "--models-dir", {str(tmp_path / "no-models")!r}]))
        print(json.dumps({{"codes": codes, "torch": "torch" in sys.modules, "listing": listing.getvalue()}}))
    """)
    assert result["codes"] == [0, 0, 0, 1]  # the example names models that are not there
    assert result["torch"] is False
    assert "SaveImage\tSave Image" in result["listing"]


def test_console_prints_plain_lines_off_a_tty(capsys):
    console = cli.Console(txt2img_prompt())
    console(Event("executing", {"node": "4", "display_node": "4", "prompt_id": "p"}))
    console(Event("progress", {"value": 1, "max": 2, "prompt_id": "p", "node": "4"}))
    assert capsys.readouterr().err.splitlines() == ["#4 LCMSampler", "  step 1/2"]


def test_console_draws_a_tqdm_bar_on_a_tty():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    console = cli.Console(txt2img_prompt(), stream=stream)
    console(Event("executing", {"node": "4", "display_node": "4", "prompt_id": "p"}))
    for value in (1, 2, 3, 4):
        console(Event("progress", {"value": value, "max": 4, "prompt_id": "p", "node": "4"}))
    assert console.bar is not None and console.bar.n == 4
    console(Event("execution_success", {"prompt_id": "p", "timestamp": 0}))
    assert console.bar is None and "#4:   0%" in stream.getvalue()


def test_help_mentions_serve(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "lcm-run serve" in capsys.readouterr().out
