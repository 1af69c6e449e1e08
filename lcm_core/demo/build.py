"""Regenerate the shipped shapes demo family from nothing: `python -m lcm_core.demo.build`.

Stages, each skipped when its output already exists (`--redo` lists stages to rebuild):
1. `vae`: an AutoencoderKL on rendered shapes images, then its decoder alone (encoder
   frozen, so the latent space stays) on half-striped images, so the LCF style's stripes
   survive decoding (`<work>/vae`).
2. `teacher`: CLIP text encoder + UNet with CFG dropout (epsilon on SD's schedule; with
   `--schedule zero-snr`, v-prediction on it rescaled to zero terminal SNR), saved with the VAE and
   tokenizer as `<models>/diffusers/shapes_sd_demo`.
3. `lcd`: an LCM-LoRA distilled from the teacher with `lcm_core.training.train_lcd`
   (`<models>/loras/shapes_lcm_lora.safetensors`).
4. `lcf`: a striped-style LoRA by Latent Consistency Fine-tuning of teacher + LCM-LoRA on
   striped images with `train_lcf` (`<models>/loras/shapes_lcf_striped.safetensors`). Their
   captions leave "striped" out, a word the teacher never learnt: the LoRA is the style,
   and the prompt stays what the text encoder knows.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .family import LCM_LORA_NAME, SCHEDULES, STRIPED_LORA_NAME, TEACHER_NAME

STAGES = ("vae", "teacher", "lcd", "lcf")
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


@dataclass
class Budget:
    """Steps and sizes of one build; the defaults made the shipped files, `smoke()` checks
    the pipeline in seconds."""

    train_images: int = 20000
    vae_steps: int = 3000
    vae_batch: int = 16
    decoder_images: int = 2000
    decoder_steps: int = 800
    teacher_steps: int = 3000
    teacher_batch: int = 64
    lcd_images: int = 2000
    lcd_steps: int = 600
    lcd_batch: int = 32
    lcd_lr: float = 5e-4
    lcf_images: int = 1000
    lcf_steps: int = 400
    lcf_batch: int = 32
    lcf_lr: float = 1e-4
    lora_rank: int = 16

    @classmethod
    def smoke(cls) -> "Budget":
        return cls(train_images=64, vae_steps=2, vae_batch=4, decoder_images=8, decoder_steps=2, teacher_steps=2,
                   teacher_batch=4, lcd_images=8, lcd_steps=2, lcd_batch=4, lcf_images=8, lcf_steps=2, lcf_batch=4,
                   lora_rank=4)


def _report(every: int):
    def report(stage: str, step: int, loss: float, seconds: float) -> None:
        if step == 1 or step % every == 0:
            print(f"[{stage}] step {step} loss {loss:.5f} {seconds:.0f}s", flush=True)
    return report


def build(models_dir: Path, work_dir: Path, budget: Budget, redo: tuple[str, ...] = (), seed: int = 0,
          schedule: str = "sd") -> None:
    """Run the missing (or `redo`) stages; see the module docstring."""
    import numpy as np
    import torch

    from .. import paths
    from .family import build_tokenizer, save_family
    from .pretrain import finetune_decoder, render_set, train_teacher, train_vae

    teacher_dir = models_dir / "diffusers" / TEACHER_NAME
    outputs = {"vae": work_dir / "vae", "teacher": teacher_dir, "lcd": models_dir / "loras" / LCM_LORA_NAME,
               "lcf": models_dir / "loras" / STRIPED_LORA_NAME}
    for stage in redo:
        target = outputs[stage]
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    report = _report(max(1, budget.teacher_steps // 30))
    started = time.perf_counter()
    images = captions = None
    if not outputs["vae"].is_dir() or not teacher_dir.is_dir():
        images, captions = render_set(budget.train_images, seed)
    if not outputs["vae"].is_dir():
        vae = train_vae(images, budget.vae_steps, budget.vae_batch, seed=seed, report=report)
        plain, _ = render_set(budget.decoder_images, seed + 11)
        striped, _ = render_set(budget.decoder_images, seed + 12, striped_fraction=1.0)
        finetune_decoder(vae, np.concatenate([plain, striped]), budget.decoder_steps, budget.vae_batch, seed=seed + 1,
                         report=report)
        vae.save_pretrained(outputs["vae"])
    if not teacher_dir.is_dir():
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(outputs["vae"]).eval()
        tokenizer = build_tokenizer()
        text_encoder, unet = train_teacher(vae, tokenizer, images, captions, budget.teacher_steps,
                                           budget.teacher_batch, seed=seed, schedule=schedule, report=report)
        partial = teacher_dir.with_name(teacher_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        save_family(partial, vae, tokenizer, text_encoder, unet, schedule)
        partial.rename(teacher_dir)
    print(f"[build] base family ready after {time.perf_counter() - started:.0f}s", flush=True)

    previous = paths.provider()
    paths.configure(paths.LocalFolders(models_dir, input_dir=work_dir / "input", output_dir=work_dir / "output"))
    try:
        torch.manual_seed(seed)
        for method in ("lcd", "lcf"):
            if not outputs[method].is_file():
                _train_lora(method, teacher_dir, work_dir, budget, seed)
    finally:
        paths.configure(previous)
    print(f"[build] done in {time.perf_counter() - started:.0f}s", flush=True)


def _dataset(work_dir: Path, name: str, count: int, seed: int, striped_fraction: float) -> str:
    from .shapes import write_dataset

    folder = work_dir / "input" / name
    if not folder.is_dir() or len(list(folder.glob("*.png"))) != count:
        shutil.rmtree(folder, ignore_errors=True)
        write_dataset(folder, count, seed=seed, striped_fraction=striped_fraction, style_word=False)
    return str(folder)


def _train_lora(method: str, teacher_dir: Path, work_dir: Path, budget: Budget, seed: int) -> None:
    """`lcd`: the LCM-LoRA from the teacher on plain shapes; `lcf`: the striped style on top
    of teacher + LCM-LoRA, on striped shapes. Both with `lcm_core.training`, as the nodes."""
    from ..lora.apply import apply_lora
    from ..models.load import load_checkpoint
    from ..training import TrainingConfig, train_lcd, train_lcf

    model, clip, vae = load_checkpoint(teacher_dir, dtype="fp32")
    if method == "lcd":
        images, steps, lr, batch, save_name = (budget.lcd_images, budget.lcd_steps, budget.lcd_lr, budget.lcd_batch,
                                               LCM_LORA_NAME)
        dataset = _dataset(work_dir, "lcd_shapes", images, seed + 1, 0.0)
    else:
        model, _ = apply_lora(model, None, teacher_dir.parent.parent / "loras" / LCM_LORA_NAME, 1.0, 0.0)
        images, steps, lr, batch, save_name = (budget.lcf_images, budget.lcf_steps, budget.lcf_lr, budget.lcf_batch,
                                               STRIPED_LORA_NAME)
        dataset = _dataset(work_dir, "lcf_striped_style", images, seed + 2, 1.0)
    config = TrainingConfig(method=method, dataset_dir=dataset, steps=steps, learning_rate=lr, batch_size=batch,
                            resolution=64, lora_rank=budget.lora_rank, seed=seed, save_name=save_name,
                            w_min=2.0, w_max=6.0, checkpoint_every=max(1, steps // 4),
                            output_dir=str(work_dir / f"{method}_run"), save_peft=False)
    result = (train_lcd if method == "lcd" else train_lcf)(model, clip, vae, config)
    print(f"[{method}] saved {result.saved_name}; loss log {result.log_path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lcm_core.demo.build", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=REPO_MODELS, help="where the family is written")
    parser.add_argument("--work-dir", type=Path, default=Path("build") / "demo", help="datasets, runs, the VAE")
    parser.add_argument("--redo", nargs="*", choices=STAGES, default=(), help="stages to rebuild although present")
    parser.add_argument("--smoke", action="store_true", help="tiny budget: checks the pipeline, useless models")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="sd",
                        help="the teacher's noise schedule: sd (what ships) or zero-snr (v-prediction; README)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    build(args.models_dir, args.work_dir, Budget.smoke() if args.smoke else Budget(), tuple(args.redo),
          schedule=args.schedule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
