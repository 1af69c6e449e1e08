"""ComfyUI's own editor, served by `lcm-run serve`, in a real Chromium driven by Playwright.

It opens the editor, finds our nodes in the node library, loads an example workflow,
queues it and sees the output image, with no console error from our extension. The
frontend is also the ground truth for UI → API conversion: for every UI workflow (the
examples, and graphs the editor itself builds with Reroute, Primitive, muted and bypassed
nodes) `app.graphToPrompt()` must equal `lcm_core.graph.convert.ui_to_api`.
Screenshots go to `$LCM_SCREENSHOTS` (default `<tmp>/screenshots`). Needs Debian's
`chromium` and PyPI's `playwright`; skipped with the reason when either is missing.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest

from lcm_core.graph.convert import ui_to_api
from lcm_core.server.frontend import find_frontend
from support import dummy_nodes
from support.live_server import LiveServer, serve_folders

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
UI_WORKFLOWS = sorted(WORKFLOWS.glob("*.json"))
ALL_UI_WORKFLOWS = UI_WORKFLOWS + sorted((WORKFLOWS / "training").glob("*.json"))
DISPLAY_NAMES = {"LCMCheckpointLoader": "Load LCM Checkpoint", "LCMLoraLoader": "Apply LoRA (LCM)",
                 "LCMTextEncode": "LCM Text Encode", "LCMSampler": "LCM Sampler", "LCMVAEDecode": "LCM VAE Decode",
                 "LCMVAEEncode": "LCM VAE Encode", "SaveImage": "Save Image", "PreviewImage": "Preview Image",
                 "EmptyLatentImage": "Empty Latent Image", "LoadImage": "Load Image"}
OUR_SCRIPT = "/extensions/comfyui-lcm/"
# Requests the editor makes that 404 on ComfyUI itself too (optional user files).
OPTIONAL_FILES = ("/api/userdata/user.css", "/user.css", "/api/userdata/comfy.templates.json")

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (PyPI) is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)
if find_frontend() is None:
    pytest.skip("comfyui-frontend-package is not installed (the [ui] extra)", allow_module_level=True)

# The editor builds these itself: a Reroute on the model link, a bypassed LoRA loader on the
# model path, a Primitive driving the seed, and a muted preview.
EDIT_GRAPH_JS = """async () => {
  const g = app.graph;
  const find = (t) => g._nodes.find((n) => n.type === t);
  const loader = find("LCMCheckpointLoader"), sampler = find("LCMSampler"), decode = find("LCMVAEDecode");
  const add = (t, pos) => { const n = LiteGraph.createNode(t); n.pos = pos; g.add(n); return n; };
  const reroute = add("Reroute", [380, 80]);
  loader.connect(0, reroute, 0);
  const lora = add("LCMLoraLoader", [420, 40]);
  reroute.connect(0, lora, lora.findInputSlot("model"));
  lora.connect(0, sampler, sampler.findInputSlot("model"));
  lora.mode = 4;
  const primitive = add("PrimitiveNode", [400, 500]);
  primitive.connect(0, sampler, sampler.findInputSlot("seed"));
  const preview = add("PreviewImage", [1300, 500]);
  decode.connect(0, preview, 0);
  preview.mode = 2;
  g.setDirtyCanvas(true, true);
  return true;
}"""


class FakeFineTune:
    """Stands in for the training node: reports "loss <x>" each step, as `lcm_core.training` does."""

    LOSSES = (0.9, 0.5, 0.35, 0.3, 0.2)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 5, "min": 1, "max": 5, "tooltip": "steps"})}}

    RETURN_TYPES = ()
    FUNCTION = "train"
    OUTPUT_NODE = True
    CATEGORY = "LCM/training"
    DESCRIPTION = "fake trainer"

    def train(self, steps):
        from lcm_core import progress

        for i in range(steps):
            progress.report(i + 1, steps, text=f"loss {self.LOSSES[i]:.4f}")
        return ()


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    serve_folders(tmp)
    live = LiveServer({**dummy_nodes.all_nodes(), "LCMFineTune": FakeFineTune}, DISPLAY_NAMES,
                      user_dir=tmp / "user", frontend_root=find_frontend(), max_upload_mb=10)
    live.shots = Path(os.environ.get("LCM_SCREENSHOTS") or tmp / "screenshots")
    live.shots.mkdir(parents=True, exist_ok=True)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, browser_server):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.problems = []
    page.failed = []
    page.on("console", lambda m: page.problems.append((m.type, m.text, m.location.get("url", "")))
            if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(("pageerror", str(e), e.stack or "")))
    page.on("response", lambda r: page.failed.append((r.status, r.url)) if r.status >= 400 else None)
    page.views = []
    page.on("response", lambda r: page.views.append(r.url) if r.status == 200 and "/view?" in r.url else None)
    page.goto(browser_server.url)
    page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=60_000)
    page.wait_for_timeout(1000)
    page.keyboard.press("Escape")  # the template dialog
    yield page
    page.close()


def _load(page, workflow: dict) -> None:
    """Load `workflow` and wait until the editor's graph holds all of its nodes (a fixed sleep
    raced the editor on a loaded CI machine)."""
    page.evaluate("async wf => { await app.loadGraphData(wf); }", workflow)
    page.wait_for_function("n => app.graph && app.graph._nodes.length === n", arg=len(workflow.get("nodes", [])),
                           timeout=30_000)
    page.wait_for_timeout(100)


def _graph_to_prompt(page) -> dict:
    return page.evaluate("async () => { const p = await app.graphToPrompt(); "
                         "return JSON.parse(JSON.stringify({output: p.output, workflow: p.workflow})); }")


def test_editor_lists_our_nodes_and_runs_an_example(page, browser_server):
    assert "comfyui-lcm.progress" in page.evaluate("app.extensions.map(e => e.name)")
    page.click(".node-library-tab-button")
    page.fill("input.search-box-input", "LCM")
    page.wait_for_timeout(800)
    library = page.locator(".node-lib-tree-explorer").inner_text()
    assert "LCM Sampler" in library and "Load LCM Checkpoint" in library and "LCM Text Encode" in library
    page.screenshot(path=str(browser_server.shots / "node_library.png"))
    page.click(".node-library-tab-button")

    workflow = json.loads((WORKFLOWS / "lcm_txt2img.json").read_text())
    for node in workflow["nodes"]:  # the dummy nodes' checkpoint, and a small image
        if node["type"] == "LCMCheckpointLoader":
            node["widgets_values"][0] = dummy_nodes.CHECKPOINTS[0]
        if node["type"] == "EmptyLatentImage":
            node["widgets_values"][:2] = [64, 64]
    _load(page, workflow)
    page.mouse.click(900, 950)  # focus the canvas, then "." fits the whole graph in view
    page.keyboard.press(".")
    page.wait_for_timeout(300)
    page.locator("button:has-text('Run')").first.click()
    page.wait_for_function("Object.values(app.nodeOutputs || {}).some(o => o.images && o.images.length)",
                           timeout=60_000)
    outputs = page.evaluate("JSON.parse(JSON.stringify(app.nodeOutputs))")
    image = next(o["images"][0] for o in outputs.values() if o.get("images"))
    assert image["type"] == "output" and image["filename"].endswith(".png")
    for _ in range(300):  # the editor fetches the image to draw it on the SaveImage node
        if any(image["filename"] in url for url in page.views):
            break
        page.wait_for_timeout(100)
    assert any(image["filename"] in url for url in page.views), page.views
    page.wait_for_timeout(500)
    page.screenshot(path=str(browser_server.shots / "txt2img_run.png"))
    ours = [p for p in page.problems if OUR_SCRIPT in p[2] or "comfyui-lcm" in p[1]]
    assert not ours, ours
    unexpected = [f for f in page.failed if f[0] >= 400 and not f[1].split("?")[0].endswith(OPTIONAL_FILES)
                  and "/api/view?type=input&filename=undefined" not in f[1]]
    assert not unexpected, unexpected


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=[p.stem for p in UI_WORKFLOWS])
def test_frontend_graph_to_prompt_matches_ui_to_api(page, path):
    workflow = json.loads(path.read_text())
    _load(page, copy.deepcopy(workflow))
    built = _graph_to_prompt(page)
    classes = {**dummy_nodes.all_nodes(), "LCMFineTune": FakeFineTune}
    assert ui_to_api(workflow, classes, DISPLAY_NAMES) == built["output"]
    assert ui_to_api(built["workflow"], classes, DISPLAY_NAMES) == built["output"]


def test_frontend_reroute_primitive_muted_bypassed_match_ui_to_api(page, browser_server):
    _load(page, json.loads((WORKFLOWS / "lcm_txt2img.json").read_text()))
    assert page.evaluate(EDIT_GRAPH_JS)
    built = _graph_to_prompt(page)
    page.screenshot(path=str(browser_server.shots / "reroute_primitive_muted_bypassed.png"))
    kinds = {n["type"]: n.get("mode", 0) for n in built["workflow"]["nodes"]}
    assert kinds["Reroute"] == 0 and kinds["PrimitiveNode"] == 0 and kinds["LCMLoraLoader"] == 4
    assert kinds["PreviewImage"] == 2
    output = built["output"]
    assert {n["class_type"] for n in output.values()} == {
        "LCMCheckpointLoader", "LCMTextEncode", "EmptyLatentImage", "LCMSampler", "LCMVAEDecode", "SaveImage"}
    assert ui_to_api(built["workflow"], dummy_nodes.all_nodes(), DISPLAY_NAMES) == output


def test_extension_draws_loss_chart_and_gets_latent_previews(page, browser_server):
    workflow = json.loads((WORKFLOWS / "lcm_txt2img.json").read_text())
    for node in workflow["nodes"]:
        if node["type"] == "LCMCheckpointLoader":
            node["widgets_values"][0] = dummy_nodes.CHECKPOINTS[0]
        if node["type"] == "EmptyLatentImage":
            node["widgets_values"][:2] = [64, 64]
        if node["type"] == "LCMSampler":
            node["widgets_values"][0] = 777  # a new seed: the sampler runs again (not from the cache)
    _load(page, workflow)
    trainer_id = page.evaluate("""async () => {
      window.__lcmPreviews = 0;
      const { api } = await import("/scripts/api.js");
      api.addEventListener("b_preview", () => { window.__lcmPreviews += 1; });
      const n = LiteGraph.createNode("LCMFineTune"); n.pos = [100, 650]; app.graph.add(n);
      return n.id;
    }""")
    page.mouse.click(900, 950)
    page.keyboard.press(".")
    page.locator("button:has-text('Run')").first.click()
    losses_js = f"""async () => {{
      const m = await import("{OUR_SCRIPT}lcm.js");
      const run = m.runs.get("{trainer_id}");
      return run ? run.losses : null;
    }}"""
    for _ in range(300):
        if page.evaluate(losses_js) == list(FakeFineTune.LOSSES):
            break
        page.wait_for_timeout(100)
    assert page.evaluate(losses_js) == list(FakeFineTune.LOSSES)
    assert page.evaluate("window.__lcmPreviews") >= 1  # the sampler's latent previews reached the editor
    page.wait_for_timeout(500)
    page.screenshot(path=str(browser_server.shots / "loss_chart_and_progress.png"))
    assert page.evaluate("""async () => (await import("/extensions/comfyui-lcm/lcm.js")).parseLoss("step 3 loss=1.5e-2")""") \
        == 0.015
    ours = [p for p in page.problems if OUR_SCRIPT in p[2] or "comfyui-lcm" in p[1]]
    assert not ours, ours


def test_editor_saves_workflows_to_the_user_folder(page, browser_server):
    workflow = json.loads((WORKFLOWS / "sd15_lcm_lora_style.json").read_text())
    _load(page, workflow)
    page.mouse.click(900, 950)
    page.keyboard.press("Control+s")
    page.locator(".p-dialog input").first.fill("saved by the editor")
    page.keyboard.press("Enter")
    saved = browser_server.state.options.user_dir / "default" / "workflows" / "saved by the editor.json"
    for _ in range(100):
        if saved.is_file():
            break
        page.wait_for_timeout(100)
    built = _graph_to_prompt(page)
    classes = {**dummy_nodes.all_nodes(), "LCMFineTune": FakeFineTune}
    assert ui_to_api(json.loads(saved.read_text()), classes, DISPLAY_NAMES) == built["output"]
    page.click(".workflows-tab-button")
    page.get_by_text("saved by the editor.json").first.wait_for(timeout=10_000)  # listed from /userdata
    page.screenshot(path=str(browser_server.shots / "saved_workflow.png"))
    page.click(".workflows-tab-button")


def test_frontend_graph_to_prompt_matches_ui_to_api_with_the_real_nodes(browser, tmp_path):
    """The same ground truth with the real node classes' INPUT_TYPES (once all are registered)."""
    from lcm_core.graph import registry

    classes, names = registry.node_classes(), registry.display_names()
    if not {"LCMCheckpointLoader", "LCMLoraLoader", "LCMTextEncode", "LCMSampler", "LCMVAEDecode",
            "LCMVAEEncode", "LCMFineTune", "LCMDistillLoRA"} <= set(classes):
        pytest.skip("the real LCM nodes are not all registered yet")
    serve_folders(tmp_path)
    live = LiveServer(classes, names, user_dir=tmp_path / "user", frontend_root=find_frontend())
    try:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(live.url)
        page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=60_000)
        for path in ALL_UI_WORKFLOWS:
            workflow = json.loads(path.read_text())
            _load(page, copy.deepcopy(workflow))
            assert ui_to_api(workflow, classes, names) == _graph_to_prompt(page)["output"], path.name
        page.close()
    finally:
        live.stop()

