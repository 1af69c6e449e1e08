"""The regeneration script (`python -m lcm_core.demo.build`) on its smoke budget: every
stage runs, writes the files the loaders and the demo workflows read, and a second run
skips what exists; `--redo` rebuilds a stage."""

from __future__ import annotations

import json

from lcm_core import paths
from lcm_core.demo import build, family
from support.host import PACK_ROOT


def test_smoke_build_writes_a_loadable_family_and_skips_what_exists(tmp_path, one_thread):
    from lcm_core.graph import cli

    models, work = tmp_path / "models", tmp_path / "work"
    try:
        assert build.main(["--models-dir", str(models), "--work-dir", str(work), "--smoke"]) == 0
        files = {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()}
        assert models / "loras" / family.LCM_LORA_NAME in files
        assert models / "loras" / family.STRIPED_LORA_NAME in files
        assert models / "diffusers" / family.TEACHER_NAME / "unet" / "config.json" in files

        assert build.main(["--models-dir", str(models), "--work-dir", str(work), "--smoke"]) == 0
        assert {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()} == files
        build.main(["--models-dir", str(models), "--work-dir", str(work), "--smoke", "--redo", "lcf"])
        lcf = models / "loras" / family.STRIPED_LORA_NAME
        assert lcf.stat().st_mtime_ns != files[lcf]
        assert (models / "loras" / family.LCM_LORA_NAME).stat().st_mtime_ns == files[models / "loras" /
                                                                                  family.LCM_LORA_NAME]

        out, report = tmp_path / "out", tmp_path / "report.json"
        code = cli.main([str(PACK_ROOT / "workflows" / "demo_shapes.json"), "--models-dir", str(models),
                         "--output-dir", str(out), "--device", "cpu", "--report", str(report)])
        body = json.loads(report.read_text())
        assert code == 0, body["error"] or body["node_errors"]
        assert len(list(out.glob("*.png"))) == 1
    finally:
        paths.configure(None)
