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


def test_zero_snr_schedule_builds_a_v_prediction_family_that_samples(tmp_path, one_thread):
    import torch

    from lcm_core.models.load import load_checkpoint
    from lcm_core.sampling.options import SamplingOptions
    from lcm_core.sampling.sampler import sample
    from lcm_core.text.encode import encode_text

    models = tmp_path / "models"
    try:
        assert build.main(["--models-dir", str(models), "--work-dir", str(tmp_path / "work"), "--smoke",
                           "--schedule", "zero-snr"]) == 0
        folder = models / "diffusers" / family.TEACHER_NAME
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        assert config == family.SCHEDULES["zero-snr"]
        model, clip, _ = load_checkpoint(folder, dtype="fp32", device="cpu")
        assert model.prediction_type == "v_prediction" and model.scheduler_config["rescale_betas_zero_snr"]
        latent = {"samples": torch.zeros(1, 4, 8, 8)}
        out = sample(model, encode_text(clip, "a red circle on a blue background, center"), latent,
                     SamplingOptions(seed=0, steps=4, guidance_scale=1.0))
        assert torch.isfinite(out["samples"]).all() and out["samples"].abs().max() > 0
    finally:
        paths.configure(None)
