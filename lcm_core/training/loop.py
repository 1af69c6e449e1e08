"""The loop LCF and LCD share: accelerate setup, seeded data order, optimizer steps,
progress with the loss, checkpoints, exact resume, and the outputs of a finished run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .. import paths, progress
from ..errors import InputError, Interrupted
from . import checkpoint, outputs
from .config import TrainingConfig
from .consistency import NoiseSchedule
from .dataset import EncodedDataset, TextCondition, scan_dataset
from .student import Student, copy_unet

LossFn = Callable[[torch.Tensor, TextCondition, torch.Generator], torch.Tensor]
LossBuilder = Callable[[Student, NoiseSchedule, EncodedDataset, TrainingConfig], LossFn]


@dataclass(frozen=True)
class TrainingResult:
    """A finished run: the trained model handle, the saved file's name (relative to its
    models folder), the loss curve as an `IMAGE` tensor, and the JSON loss log's path."""

    model: Any
    saved_name: str
    loss_curve: torch.Tensor
    log_path: Path


def run_dir_for(config: TrainingConfig) -> Path:
    """Where checkpoints, logs and caches of the run `save_name` live."""
    if config.output_dir:
        return Path(config.output_dir)
    stem = config.save_name.removesuffix(".safetensors")
    return paths.io_dir("output") / "lcm_training" / stem


def make_accelerator(config: TrainingConfig):
    """An `Accelerator` for this run: the current device (or the `accelerate launch` set-up),
    mixed precision and gradient accumulation from the config."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from ..devices import pick_device

    cpu = pick_device().type == "cpu"
    if cpu and config.mixed_precision == "fp16":
        raise InputError("fp16 mixed precision needs a GPU", input_name="mixed_precision",
                         details="Use 'no' or 'bf16' on the CPU.")
    AcceleratorState._reset_state()
    return Accelerator(mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum,
                       cpu=cpu)


class _DataOrder:
    """Which examples a process sees at micro-step `m`: a fresh seeded permutation per
    epoch, sliced per process; a pure function of (seed, m), so resume needs no state."""

    def __init__(self, n: int, batch: int, seed: int, rank: int, world: int):
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))}
        return self._perms[epoch]

    def indices(self, micro_step: int) -> list[int]:
        start = (micro_step * self.world + self.rank) * self.batch
        return [int(self._perm(p // self.n)[p % self.n]) for p in range(start, start + self.batch)]


def train(model, clip, vae, config: TrainingConfig, build_loss: LossBuilder) -> TrainingResult:
    """Run `config.method` on `model` with the loss `build_loss` makes; see `train_lcf`/`train_lcd`."""
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler

    config.validate()
    examples = scan_dataset(config.dataset_dir, config.resolution)
    accelerator = make_accelerator(config)
    run_dir = run_dir_for(config)
    ckpt_root = run_dir / "checkpoints"
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not config.resume:
            shutil.rmtree(ckpt_root, ignore_errors=True)
    accelerator.wait_for_everyone()

    set_seed(config.seed)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.mixed_precision, torch.float32)
    student = Student(copy_unet(model, weight_dtype if not config.full_unet else torch.float32), config)
    student.unet.to(accelerator.device)
    if student.ema is not None:
        student.ema = {k: v.to(accelerator.device) for k, v in student.ema.items()}
    with clip.materialized() as encoders:
        data = EncodedDataset(examples, config.resolution, clip.tokenizers, encoders, vae.vae,
                              vae.scaling_factor, vae.shift_factor, config.cache_latents,
                              run_dir / "cache" if config.cache_latents else None, family=model.family)
    schedule = NoiseSchedule(model.scheduler_config, model.prediction_type, config.num_ddim_timesteps,
                             config.timestep_scaling, accelerator.device)
    loss_fn = build_loss(student, schedule, data, config)
    optimizer = torch.optim.AdamW(list(student.trainable().values()), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    lr_scheduler = get_scheduler("constant_with_warmup", optimizer,
                                 num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=config.steps * accelerator.num_processes)
    student.online, optimizer, lr_scheduler = accelerator.prepare(student.unet, optimizer, lr_scheduler)

    log = _run(accelerator, config, student, data, loss_fn, optimizer, lr_scheduler, ckpt_root)
    return _finish(accelerator, model, clip, vae, config, student, run_dir, log)


def _run(accelerator, config: TrainingConfig, student: Student, data: EncodedDataset, loss_fn: LossFn,
         optimizer, lr_scheduler, ckpt_root: Path) -> list[dict]:
    rank, world = accelerator.process_index, accelerator.num_processes
    generator = torch.Generator().manual_seed(config.seed + 7919 * rank)
    order = _DataOrder(len(data), config.batch_size, config.seed, rank, world)
    step, log = 0, []
    fingerprint = config.fingerprint()

    found = checkpoint.latest(ckpt_root) if config.resume else None
    if found is not None:
        state, rng = checkpoint.read(found, rank)
        if state["fingerprint"] != fingerprint:
            changed = sorted(k for k in fingerprint if state["fingerprint"].get(k) != fingerprint[k])
            raise InputError(f"cannot resume {found}: settings changed ({', '.join(changed)})", input_name="resume",
                             details="Resume with the settings the run started with, or turn resume off.")
        student.load_state(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        step, log = state["step"], list(state["log"])
        checkpoint.restore_rng(rng, generator)

    def save() -> None:
        state = None
        if accelerator.is_main_process:
            state = {"step": step, "fingerprint": fingerprint, "student": student.state(), "log": log,
                     "optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()}
        checkpoint.write(ckpt_root, step, state, checkpoint.rng_state(generator), rank,
                         accelerator.wait_for_everyone, config.keep_checkpoints)

    total = config.steps
    params = list(student.trainable().values())
    try:
        while step < total:
            progress.check_interrupt()
            losses = []
            for micro in range(config.grad_accum):
                indices = order.indices(step * config.grad_accum + micro)
                with accelerator.accumulate(student.online):
                    latents, text = data.batch(indices, generator, accelerator.device)
                    with accelerator.autocast():
                        loss = loss_fn(latents, text, generator)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, config.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                losses.append(loss.detach().float())
            student.update_ema()
            step += 1
            value = accelerator.reduce(torch.stack(losses).mean(), reduction="mean").item()
            log.append({"step": step, "loss": value, "lr": lr_scheduler.get_last_lr()[0]})
            progress.report(step, total, text=f"loss {value:.4f}")
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total:
                save()
    except Interrupted:
        save()
        raise
    return log


def _finish(accelerator, model, clip, vae, config: TrainingConfig, student: Student, run_dir: Path,
            log: list[dict]) -> TrainingResult:
    accelerator.wait_for_everyone()
    unet = accelerator.unwrap_model(student.online)
    unet.eval()
    title = f"{config.method.upper()} {config.save_name}: loss over {len(log)} steps"
    curve = outputs.save_curve(run_dir, [e["loss"] for e in log], title) if accelerator.is_main_process else None
    log_path = outputs.write_loss_log(run_dir, log) if accelerator.is_main_process else run_dir / "loss.json"
    method = model.method if model.method != "none" else ("lcm" if config.full_unet else "lcm-lora")
    if config.full_unet:
        saved = outputs.save_diffusers_folder(unet, clip, vae, model.scheduler_config, config.save_name) \
            if accelerator.is_main_process else None
        trained = model.replace(unet=unet, patches=(), method=method, source=str(saved or ""))
        return TrainingResult(trained, saved.name if saved else "", curve, log_path)
    alpha = config.lora_alpha if config.lora_alpha is not None else config.lora_rank
    lora = student.lora_state_dict()
    saved = None
    if accelerator.is_main_process:
        meta = {"lcm_training_method": config.method, "lcm_lora_method": method, "lcm_steps": len(log)}
        saved = outputs.save_lora_outputs(lora, config.save_name, model.family, alpha, run_dir, meta,
                                          config.save_peft)
    accelerator.wait_for_everyone()
    trained = _lora_handle(model, clip, unet, saved, method)
    return TrainingResult(trained, saved.name if saved else "", curve, log_path)


def _lora_handle(model, clip, unet, saved: Path | None, method: str):
    """The input handle plus the saved LoRA (through our LoRA loader, so the base UNet stays
    shared); on non-main processes, which save nothing, the trained UNet copy itself."""
    if saved is None:
        unet.requires_grad_(False)
        return model.replace(unet=unet, patches=(), method=method, source=model.source)
    from ..lora.apply import apply_lora

    trained, _ = apply_lora(model, clip, saved, 1.0, 0.0)
    return trained.replace(method=method)
