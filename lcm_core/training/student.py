"""The trained network: a private copy of the input UNet, with a LoRA or fully trainable,
its EMA target, and the teacher view (the same UNet with the LoRA switched off)."""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch

from ..errors import InputError
from .config import TrainingConfig

ADAPTER = "default"


def copy_unet(model, dtype: torch.dtype) -> torch.nn.Module:
    """A standalone copy of the handle's UNet with its patches applied; the handle's
    shared modules are left untouched."""
    with model.materialized() as unet:
        copied = copy.deepcopy(unet)
    return copied.to(dtype=dtype)


class Student:
    """Owns the trainable UNet, the names of its trainable parameters and the EMA copy."""

    def __init__(self, unet: torch.nn.Module, config: TrainingConfig):
        self.config = config
        self.unet = unet
        self.lora = not config.full_unet
        unet.requires_grad_(False)
        if self.lora:
            from peft import LoraConfig

            targets = self._lora_targets(unet, config.lora_targets)
            alpha = config.lora_alpha if config.lora_alpha is not None else config.lora_rank
            unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=alpha, target_modules=targets),
                             adapter_name=ADAPTER)
            for name, param in unet.named_parameters():
                if ".lora_" in name:
                    param.data = param.data.float()
                    param.requires_grad_(True)
        else:
            unet.requires_grad_(True)
            unet.float()
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        self.online = unet
        self.names = [n for n, p in unet.named_parameters() if p.requires_grad]
        decay = config.effective_ema_decay
        self.ema_decay = decay
        self.ema = {n: p.detach().clone() for n, p in unet.named_parameters() if p.requires_grad} if decay > 0 else None

    @staticmethod
    def _lora_targets(unet: torch.nn.Module, wanted: tuple) -> list[str]:
        present = [w for w in wanted if any(name == w or name.endswith("." + w) for name, _ in unet.named_modules())]
        if not present:
            raise InputError("none of the LoRA target modules exist in this UNet", input_name="lora_targets",
                             details=f"Asked for {', '.join(wanted)}.")
        return present

    @property
    def time_cond_dim(self) -> int | None:
        """The guidance-embedding width of an LCM-distilled UNet, None for plain SD UNets."""
        return self.unet.config.get("time_cond_proj_dim")

    def forward(self, *args, **kwargs):
        """The online student's output, with gradient (through the accelerate-prepared module)."""
        return self.online(*args, **kwargs)

    def trainable(self) -> dict[str, torch.Tensor]:
        params = dict(self.unet.named_parameters())
        return {n: params[n] for n in self.names}

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.ema is None:
            return
        for name, param in self.trainable().items():
            self.ema[name].mul_(self.ema_decay).add_(param.detach(), alpha=1 - self.ema_decay)

    def target_forward(self, *args, **kwargs):
        """The target network's output: EMA weights when `ema_decay` > 0, else the online
        weights (always without gradient)."""
        with torch.no_grad():
            if self.ema is None:
                return self.unet(*args, **kwargs)
            return torch.func.functional_call(self.unet, self.ema, args, kwargs, strict=False)

    @contextlib.contextmanager
    def teacher(self) -> Iterator[torch.nn.Module]:
        """The UNet with the LoRA switched off: the frozen teacher of LCD."""
        if not self.lora:
            raise InputError("distillation needs a LoRA student (lora_rank >= 1)", input_name="lora_rank")
        self.unet.disable_adapters()
        try:
            yield self.unet
        finally:
            self.unet.enable_adapters()

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA as `peft.get_peft_model_state_dict` gives it (`…proj_in.lora_A.weight`)."""
        from peft import get_peft_model_state_dict

        return {k: v.detach().float().cpu().contiguous()
                for k, v in get_peft_model_state_dict(self.unet, adapter_name=ADAPTER).items()}

    def state(self) -> dict:
        return {"trainable": {n: p.detach().cpu().clone() for n, p in self.trainable().items()},
                "ema": {n: t.cpu().clone() for n, t in (self.ema or {}).items()}}

    @torch.no_grad()
    def load_state(self, state: dict) -> None:
        params = self.trainable()
        if set(state["trainable"]) != set(params):
            raise InputError("the checkpoint does not match this model's trainable parameters", input_name="resume",
                             details="Resume with the same model, method and LoRA settings, or start afresh.")
        for name, value in state["trainable"].items():
            params[name].copy_(value)
        if self.ema is not None:
            for name, value in state["ema"].items():
                self.ema[name].copy_(value)
