"""`TrainingConfig`: every tunable of LCF and LCD, with the defaults of diffusers'
consistency-distillation scripts where they apply; loadable from TOML for `lcm-train`."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

METHODS = ("lcf", "lcd")
LOSSES = ("huber", "l2")
PRECISIONS = ("no", "fp16", "bf16")
DEFAULT_LORA_TARGETS = (
    "to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
    "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj",
)


@dataclass
class TrainingConfig:
    """One training run.

    `method`: `lcf` (consistency fine-tuning on the dataset, no teacher, EMA target) or
    `lcd` (distil from the frozen input model as teacher). `lora_rank` 0 trains the full
    UNet (LCF only). Guidance `w_min`/`w_max` use the LCM paper's form
    `cond + w (cond - uncond)`, i.e. the usual CFG scale minus one. `steps` counts
    optimizer updates; each sees `batch_size * grad_accum` examples per process.
    """

    method: str = "lcd"
    dataset_dir: str = ""
    steps: int = 1000
    learning_rate: float = 1e-4
    batch_size: int = 1
    resolution: int = 512
    lora_rank: int = 64
    lora_alpha: float | None = None
    lora_targets: tuple = DEFAULT_LORA_TARGETS
    seed: int = 0
    save_name: str = "lcm_lora"
    resume: bool = False
    checkpoint_every: int = 100
    keep_checkpoints: int = 1
    grad_accum: int = 1
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    loss: str = "huber"
    huber_c: float = 0.001
    ema_decay: float | None = None
    w_min: float = 5.0
    w_max: float = 15.0
    num_ddim_timesteps: int = 50
    timestep_scaling: float = 10.0
    cache_latents: bool = True
    lr_warmup_steps: int = 0
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    output_dir: str = ""
    save_peft: bool = True

    @property
    def full_unet(self) -> bool:
        return self.lora_rank == 0

    @property
    def effective_ema_decay(self) -> float:
        """EMA rate of the target network: 0.95 for LCF (the full-model script's default),
        0 for LCD (the LoRA script uses the online student under no_grad)."""
        if self.ema_decay is not None:
            return self.ema_decay
        return 0.95 if self.method == "lcf" else 0.0

    def validate(self) -> "TrainingConfig":
        """Raise `InputError` naming the first invalid field."""
        checks = [
            ("method", self.method in METHODS, f"use one of {METHODS}"),
            ("steps", self.steps >= 1, "at least 1"),
            ("learning_rate", self.learning_rate > 0, "must be positive"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("resolution", self.resolution >= 8 and self.resolution % 8 == 0, "a multiple of 8"),
            ("lora_rank", self.lora_rank >= 0, "0 (full UNet, LCF only) or a positive rank"),
            ("lora_rank", not (self.method == "lcd" and self.lora_rank == 0), "LCD trains a LoRA: rank >= 1"),
            ("checkpoint_every", self.checkpoint_every >= 0, "0 disables periodic checkpoints"),
            ("grad_accum", self.grad_accum >= 1, "at least 1"),
            ("mixed_precision", self.mixed_precision in PRECISIONS, f"use one of {PRECISIONS}"),
            ("loss", self.loss in LOSSES, f"use one of {LOSSES}"),
            ("w_min", 0 <= self.w_min <= self.w_max, "need 0 <= w_min <= w_max"),
            ("num_ddim_timesteps", 1 <= self.num_ddim_timesteps <= 1000, "between 1 and the train timesteps"),
            ("ema_decay", self.ema_decay is None or 0 <= self.ema_decay < 1, "in [0, 1)"),
            ("save_name", bool(self.save_name.strip()) and "/" not in self.save_name and "\\" not in self.save_name
             and ".." not in self.save_name, "a plain file name without folders"),
        ]
        for name, ok, hint in checks:
            if not ok:
                raise InputError(f"invalid training setting {name}={getattr(self, name)!r}", input_name=name,
                                 details=hint)
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        """A config from plain values; unknown keys are refused with the known ones listed."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown training settings: {', '.join(unknown)}", input_name=unknown[0],
                             details=f"Known settings: {', '.join(sorted(known))}.")
        values = dict(values)
        if "lora_targets" in values:
            values["lora_targets"] = tuple(values["lora_targets"])
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides) -> "TrainingConfig":
        """Read a TOML file: top-level keys or a `[training]` table; `overrides` win."""
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        values = dict(data.get("training", data))
        values.pop("model", None)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    def fingerprint(self) -> dict:
        """The settings a resumed run must share with the run it continues."""
        keep = ("method", "learning_rate", "batch_size", "resolution", "lora_rank", "lora_alpha", "lora_targets",
                "seed", "grad_accum", "mixed_precision", "loss", "huber_c", "ema_decay", "w_min", "w_max",
                "num_ddim_timesteps", "timestep_scaling", "lr_warmup_steps", "weight_decay", "max_grad_norm")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k in keep}
