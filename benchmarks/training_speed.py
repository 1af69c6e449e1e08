"""LCD-LoRA training speed and peak memory on an SD1.5-size UNet (random weights):
our step (`lcm_core.training.lcd`) next to diffusers' reference step
(`examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py`: a separate teacher
UNet copy, cond and uncond teacher passes run one after the other).

    python benchmarks/training_speed.py --resolution 512 --steps 5      # GPU
    python benchmarks/training_speed.py --resolution 512 --steps 3      # 2-core CPU: about 10 minutes

Each variant runs in its own process so peak memory (CUDA max allocated, or peak RSS on
CPU) is its own. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sd15_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)


def scheduler_config() -> dict:
    return {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "prediction_type": "epsilon"}


def ours(unet, device, args):
    """One optimizer step of our LCD: student LoRA, teacher = same UNet with the LoRA off."""
    import torch

    from lcm_core.training.config import TrainingConfig
    from lcm_core.training.consistency import NoiseSchedule
    from lcm_core.training.dataset import TextCondition
    from lcm_core.training.lcd import build_lcd_loss
    from lcm_core.training.student import Student

    config = TrainingConfig(method="lcd", lora_rank=args.rank, batch_size=args.batch)
    student = Student(unet.to(device), config)
    schedule = NoiseSchedule(scheduler_config(), "epsilon", 50, 10.0, device)

    class Data:
        uncond = TextCondition(torch.zeros(1, 77, 768))

    loss_fn = build_lcd_loss(student, schedule, Data(), config)
    opt = torch.optim.AdamW(list(student.trainable().values()), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def step(latents, embeds):
        loss = loss_fn(latents, TextCondition(embeds), gen)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def reference(unet, device, args):
    """One optimizer step as diffusers' LoRA distillation script takes it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lcm_core.training.config import DEFAULT_LORA_TARGETS
    from lcm_core.training.consistency import NoiseSchedule, append_dims

    teacher = copy.deepcopy(unet).to(device).requires_grad_(False)
    student = get_peft_model(unet.to(device), LoraConfig(r=args.rank, lora_alpha=args.rank,
                                                          target_modules=list(DEFAULT_LORA_TARGETS)))
    student.train()
    sched = NoiseSchedule(scheduler_config(), "epsilon", 50, 10.0, device)
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-4)
    uncond = torch.zeros(args.batch, 77, 768, device=device)

    def step(latents, embeds):
        bsz = latents.shape[0]
        index = torch.randint(0, 50, (bsz,), device=device)
        start = sched.solver.ddim_timesteps[index]
        end = torch.clamp(start - 20, min=0)
        noise = torch.randn_like(latents)
        x = sched.add_noise(latents, noise, start)
        w = append_dims(5 + 10 * torch.rand(bsz, device=device), 4)
        pred = sched.consistency(student(x, start, encoder_hidden_states=embeds).sample, start, x)
        with torch.no_grad():
            c = teacher(x, start, encoder_hidden_states=embeds).sample
            u = teacher(x, start, encoder_hidden_states=uncond).sample
            x0c, x0u = sched.x0(c, start, x), sched.x0(u, start, x)
            ec, eu = sched.eps(c, start, x), sched.eps(u, start, x)
            x_prev = sched.solver.ddim_step(x0c + w * (x0c - x0u), ec + w * (ec - eu), index)
            target = sched.consistency(student(x_prev, end, encoder_hidden_states=embeds).sample, end, x_prev)
        loss = torch.mean(torch.sqrt((pred.float() - target.float()) ** 2 + 1e-6) - 1e-3)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def run_one(which: str, args) -> dict:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    step = (ours if which == "ours" else reference)(sd15_unet(), device, args)
    side = args.resolution // 8
    latents = torch.randn(args.batch, 4, side, side, device=device)
    embeds = torch.randn(args.batch, 77, 768, device=device)
    step(latents, embeds)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step(latents, embeds)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    took = time.perf_counter() - start
    return {"which": which, "device": str(device), "it_s": args.steps / took, "s_it": took / args.steps,
            "peak_gib": peak, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--only", choices=["ours", "reference"])
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args)))
        return
    rows = []
    for which in ("ours", "reference"):
        cmd = [sys.executable, __file__, "--only", which] + [f"--{k}={getattr(args, k)}" for k in
                                                            ("resolution", "steps", "batch", "rank")]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"command: python benchmarks/training_speed.py --resolution {args.resolution} --steps {args.steps} "
          f"--batch {args.batch} --rank {args.rank}")
    print("| step | device | resolution | batch | LoRA rank | s/it | it/s | peak memory (GiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = "lcm_core LCD" if r["which"] == "ours" else "diffusers reference"
        mem = "CUDA max allocated" if r["device"] == "cuda" else "peak RSS"
        print(f"| {name} | {r['device']} ({r['threads']} threads) | {args.resolution} | {args.batch} | {args.rank} | "
              f"{r['s_it']:.2f} | {r['it_s']:.3f} | {r['peak_gib']:.2f} ({mem}) |")


if __name__ == "__main__":
    main()
