"""The quality benchmark on its CI size (benchmarks/quality.py --reduced): the shipped
LCM-LoRA at 4 steps keeps colour, shape and background far better than its teacher at 4
DDIM steps, and the command fails when that adherence drops below its threshold.

Adherence here leaves out position, which the shipped teacher takes from the initial noise
for every method (README, quality section). Measured on this set: teacher DDIM 50 79.2%,
DDIM 4 20.8%, LCM-LoRA 4 56.2%. The issue's target "within 5 points of DDIM 50" is not met
(23 points short) and so not asserted; the thresholds below guard what the model does."""

from __future__ import annotations

import importlib.util

import pytest

from support.host import PACK_ROOT

# Stated thresholds: percent of images with colour, shape and background all right.
MIN_LCM_ADHERENCE = 45.0
MIN_LEAD_OVER_TEACHER_4 = 20.0


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("quality_benchmark", PACK_ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reduced_quality_run_keeps_the_lcm_claim(benchmark, capsys, one_thread):
    code = benchmark.main(["--reduced", "--min-lcm-adherence", str(MIN_LCM_ADHERENCE)])
    table = capsys.readouterr().out
    assert code == 0, table
    rows = {line.split("|")[1].strip().split(" (")[0] + " " + line.split("|")[2].strip(): line.split("|")
            for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")}
    adherence = {name: float(cells[4]) for name, cells in rows.items()}
    assert adherence["dataset images –"] >= 97.0
    lcm4 = adherence["LCM-LoRA 4"]
    assert lcm4 >= MIN_LCM_ADHERENCE
    assert lcm4 >= adherence["teacher DDIM 4"] + MIN_LEAD_OVER_TEACHER_4


def test_threshold_failure_exits_nonzero(benchmark, monkeypatch, capsys):
    from lcm_core.demo.quality import Row

    def fake_run(models_dir, **setting):
        return [Row("LCM-LoRA", 4, {"all": 2.5, "all but position": 12.5}, 0.0, 0.0)], []

    monkeypatch.setattr(benchmark, "run", fake_run)
    monkeypatch.setattr(benchmark.quality, "markdown", lambda rows, striped: "table")
    assert benchmark.main(["--reduced", "--min-lcm-adherence", "50"]) == 1
    assert "FAIL: LCM-LoRA 4-step adherence (all but position) 12.5% < 50%" in capsys.readouterr().out
