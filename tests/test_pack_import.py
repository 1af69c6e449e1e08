"""The pack loads as ComfyUI loads it, cheaply, with and without ComfyUI present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from support.host import PACK_ROOT, comfy_host

PACK_NODES = {
    "LCMCheckpointLoader", "LCMLoraLoader", "LCMTextEncode", "LCMSampler",
    "LCMVAEDecode", "LCMVAEEncode", "LCMFineTune", "LCMDistillLoRA",
}
HEADLESS_NODES = {"LoadImage", "SaveImage", "PreviewImage", "EmptyLatentImage"}


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACK_ROOT), str(PACK_ROOT / "tests")])}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=PACK_ROOT / "tests",
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_as_comfyui_does_is_fast_and_loads_nothing_heavy():
    result = _run("""
        import json, sys, tempfile, time
        from pathlib import Path
        from support.host import comfy_host
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            with comfy_host(Path(tmp)) as (pack, record, dirs):
                took = time.perf_counter() - start
                names = sorted(pack.NODE_CLASS_MAPPINGS)
                display = sorted(pack.NODE_DISPLAY_NAME_MAPPINGS)
                web = pack.WEB_DIRECTORY
                heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
        print(json.dumps({"took": took, "names": names, "display": display, "web": web, "heavy": heavy}))
    """)
    assert result["took"] < 2.0
    assert result["heavy"] == []
    assert PACK_NODES <= set(result["names"])
    assert not HEADLESS_NODES & set(result["names"]), "ComfyUI has its own core nodes"
    assert set(result["display"]) == set(result["names"])
    assert (PACK_ROOT / result["web"]).is_dir()


def test_import_without_comfyui_registers_headless_core_nodes():
    result = _run("""
        import json, sys
        from support.host import import_pack
        pack = import_pack()
        print(json.dumps({"names": sorted(pack.NODE_CLASS_MAPPINGS),
                          "comfy": [m for m in ("folder_paths", "comfy", "server") if m in sys.modules]}))
    """)
    assert result["comfy"] == []
    assert PACK_NODES | HEADLESS_NODES <= set(result["names"])


def test_every_node_declares_the_protocol(tmp_path):
    with comfy_host(tmp_path) as (pack, _record, _dirs):
        for name, cls in pack.NODE_CLASS_MAPPINGS.items():
            spec = cls.INPUT_TYPES()
            assert set(spec) <= {"required", "optional", "hidden"}, name
            assert isinstance(cls.RETURN_TYPES, tuple), name
            assert callable(getattr(cls, cls.FUNCTION)), name
            assert cls.CATEGORY.startswith("LCM"), name
            assert cls.DESCRIPTION, name
            for group in ("required", "optional"):
                for input_name, decl in spec.get(group, {}).items():
                    if len(decl) > 1 and isinstance(decl[1], dict):
                        assert decl[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_host_paths_come_from_folder_paths(tmp_path):
    with comfy_host(tmp_path) as (pack, _record, dirs):
        paths = sys.modules[f"{pack.__name__}.lcm_core.paths"]
        assert paths.folders("checkpoints") == [dirs["models"] / "checkpoints"]
        assert paths.folders("output") == [dirs["output"]]
        shipped = PACK_ROOT / "models"  # the demo models follow the user's own folders
        assert paths.folders("loras") == [dirs["models"] / "loras", shipped / "loras"]
        assert paths.folders("diffusers") == [dirs["models"] / "diffusers", shipped / "diffusers"]


def test_wheel_holds_the_engine_and_node_layer_but_no_top_level_nodes(tmp_path):
    """`pip install .` must not shadow ComfyUI's own top-level `nodes` module."""
    import shutil
    import zipfile

    source = tmp_path / "src"  # build from a copy: setuptools leaves build/ beside the sources
    shutil.copytree(PACK_ROOT, source, ignore=shutil.ignore_patterns(".git", "venv", ".venv", "build", "*.egg-info",
                                                                     "__pycache__", "output", "temp", "input"))
    args = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)]
    try:
        import setuptools  # noqa: F401

        args.insert(5, "--no-build-isolation")
    except ImportError:
        pass
    subprocess.run(args, check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {"lcm_core", "lcm_nodes"} <= tops
    assert "nodes" not in tops and "__init__.py" not in tops
    names = zipfile.ZipFile(wheel).namelist()
    assert "lcm_core/text/data/vocab.json" in names
    assert any(n.startswith("lcm_core/models/configs/sdxl/") for n in names)
