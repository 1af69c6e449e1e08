"""The ported consistency maths agree with diffusers' schedulers and pipeline, and the
outputs (kohya keys, loss plot, TOML config) have the documented shapes."""

from __future__ import annotations

import pytest
import torch

from lcm_core.errors import InputError
from lcm_core.training.config import TrainingConfig
from lcm_core.training.consistency import (DDIMSolver, NoiseSchedule, consistency_loss, guidance_scale_embedding,
                                           scalings_for_boundary_conditions)
from lcm_core.training.outputs import draw_loss_curve, image_tensor
from support.training_models import SD_SCHEDULER


def test_boundary_scalings_match_lcm_scheduler():
    from diffusers import LCMScheduler

    sched = LCMScheduler.from_config(SD_SCHEDULER)
    t = torch.tensor([0, 19, 259, 999])
    c_skip, c_out = scalings_for_boundary_conditions(t)
    for i, step in enumerate(t.tolist()):
        ref_skip, ref_out = sched.get_scalings_for_boundary_condition_discrete(step)
        assert c_skip[i].item() == pytest.approx(ref_skip, rel=1e-6)
        assert c_out[i].item() == pytest.approx(ref_out, rel=1e-6)
    assert c_skip[0] == 1 and c_out[0] == 0, "f(x, 0) = x"


def test_guidance_embedding_matches_the_lcm_pipeline():
    from diffusers import LatentConsistencyModelPipeline

    w = torch.tensor([1.5, 7.0])
    ref = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, embedding_dim=32)
    assert torch.allclose(guidance_scale_embedding(w, 32), ref, atol=1e-6)


def test_solver_step_matches_ddim_scheduler_and_skips_k_20():
    from diffusers import DDIMScheduler

    schedule = NoiseSchedule(SD_SCHEDULER, "epsilon", 50, 10.0, torch.device("cpu"))
    solver = schedule.solver
    assert solver.step_ratio == 20 and solver.ddim_timesteps[:3].tolist() == [19, 39, 59]
    ddim = DDIMScheduler.from_config(SD_SCHEDULER)
    ddim.set_timesteps(50)
    x, eps = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    index = torch.tensor([30, 30])
    t = solver.ddim_timesteps[index]
    x0 = schedule.x0(eps, t, x)
    ours = solver.ddim_step(x0, schedule.eps(eps, t, x), index)
    ref = ddim.step(eps, int(t[0]), x, eta=0.0).prev_sample  # DDIM goes from t to t - 1000 // 50
    assert torch.allclose(ours, ref, atol=1e-5)


def test_huber_is_pseudo_huber_with_c_0_001_and_l2_is_mse():
    a, b = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])
    assert consistency_loss(a, b).item() == pytest.approx(((1 + 1e-6) ** 0.5 - 1e-3) / 2, rel=1e-6)
    assert consistency_loss(a, b, "l2").item() == pytest.approx(0.5)


def test_loss_curve_is_an_image_tensor_with_the_curve_drawn():
    image = image_tensor(draw_loss_curve([1.0, 0.8, 0.5, 0.3], "loss"))
    assert image.shape == (1, 360, 640, 3) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    blue = (image[0, ..., 2] > 0.5) & (image[0, ..., 0] < 0.2)
    assert blue.sum() > 50, "the running-mean line is drawn"


def test_config_from_toml_and_validation(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[training]\nmethod = "lcf"\nsteps = 12\nlora_rank = 0\nmodel = "x"\n')
    config = TrainingConfig.from_toml(path, learning_rate=1e-5)
    assert (config.method, config.steps, config.full_unet, config.learning_rate) == ("lcf", 12, True, 1e-5)
    assert config.effective_ema_decay == 0.95 and TrainingConfig().effective_ema_decay == 0.0
    path.write_text("stepz = 3\n")
    with pytest.raises(InputError, match="unknown training settings: stepz"):
        TrainingConfig.from_toml(path)
    with pytest.raises(InputError, match="lora_rank"):
        TrainingConfig(method="lcd", lora_rank=0).validate()
    assert DDIMSolver(torch.linspace(0.99, 0.01, 1000), 1000, 50).ddim_timesteps[-1] == 999
