"""Time `lcm_core.sampling.sample` + `lcm_core.images.decode` against the diffusers
pipeline doing the same work on the same tiny model, and print both and their ratio.

Run from the repository root:
    PYTHONPATH=.:tests python benchmarks/sampling_overhead.py [--runs 30] [--steps 4] [--threads 1]

Runs alternate (ours, diffusers, ours, ...) after a warm-up so machine load hits both
alike; the table shows the median of each. Target: overhead ≤ 5%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from diffusers import LatentConsistencyModelPipeline, LCMScheduler, StableDiffusionPipeline

from lcm_core.images import decode
from lcm_core.sampling import SamplingOptions, sample
from support.tiny_models import (SCHEDULER_CONFIG, conditioning, model_handle, tiny_unet, tiny_vae, vae_handle,
                                 zero_latent)


def _cases(steps: int, size: int):
    """(name, ours, theirs) callables for the two guidance modes."""
    vae = tiny_vae(seed=3)
    pos, neg = conditioning(seed=1), conditioning(seed=2)
    cases = []
    for name, unet, cls, guidance in (("LCM (w-embedding)", tiny_unet(lcm=True, seed=1), LatentConsistencyModelPipeline, 8.0),
                                      ("LCM-LoRA (CFG)", tiny_unet(seed=2), StableDiffusionPipeline, 1.5)):
        pipe = cls(vae=vae, text_encoder=None, tokenizer=None, unet=unet, safety_checker=None, feature_extractor=None,
                   requires_safety_checker=False, scheduler=LCMScheduler.from_config(SCHEDULER_CONFIG))
        pipe.set_progress_bar_config(disable=True)
        model, vae_h = model_handle(unet), vae_handle(vae)
        options = SamplingOptions(seed=0, steps=steps, guidance_scale=guidance)
        negative = neg if guidance > 1 and unet.config.time_cond_proj_dim is None else None
        extra = {"negative_prompt_embeds": neg.embeds} if negative is not None else {}

        def ours(model=model, vae_h=vae_h, options=options, negative=negative):
            return decode(vae_h, sample(model, pos, zero_latent(height=size, width=size), options, negative=negative))

        def theirs(pipe=pipe, guidance=guidance, extra=extra):
            return pipe(prompt_embeds=pos.embeds, num_inference_steps=steps, guidance_scale=guidance, height=size,
                        width=size, generator=torch.Generator().manual_seed(0), output_type="np", **extra).images

        cases.append((name, ours, theirs))
    return cases


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="image width and height in pixels")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"command: PYTHONPATH=.:tests python benchmarks/sampling_overhead.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"torch {torch.__version__}, CPU threads {args.threads}, {args.size}x{args.size}, {args.steps} steps, "
          f"median of {args.runs} runs")
    print("| mode | lcm_core sample+decode (ms) | diffusers pipeline (ms) | ratio |")
    print("|---|---|---|---|")
    with torch.no_grad():
        for name, ours, theirs in _cases(args.steps, args.size):
            for _ in range(3):
                ours(), theirs()
            ours_t, theirs_t = [], []
            for _ in range(args.runs):
                ours_t.append(_time(ours))
                theirs_t.append(_time(theirs))
            a, b = statistics.median(ours_t), statistics.median(theirs_t)
            print(f"| {name} | {a * 1e3:.1f} | {b * 1e3:.1f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
