"""`lcm-train lcf|lcd`: long training runs from the shell, on one device or, with the same
code, on many: `accelerate launch -m lcm_core.training.cli lcd --config run.toml`.

Every `TrainingConfig` field is an option (`--dataset-dir`, `--steps`, `--lora-rank`, ...)
and may come from a TOML file (`--config`); options given on the command line win.
Ctrl-C stops at the next step boundary after writing a checkpoint (`--resume` continues).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from .config import METHODS, TrainingConfig

_SKIP = {"method", "lora_targets"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lcm-train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("method", choices=METHODS, help="lcf: consistency fine-tuning; lcd: LCM-LoRA distillation")
    parser.add_argument("--config", type=Path, help="TOML file with training settings (top level or [training])")
    parser.add_argument("--model", required=True,
                        help="checkpoint file or diffusers folder: a path, or a name in the models folders")
    parser.add_argument("--dtype", default="fp32", choices=["auto", "fp16", "bf16", "fp32"],
                        help="weights of the frozen parts (fp32 unless training in mixed precision)")
    parser.add_argument("--models-dir", type=Path, help="models root (loras/, diffusers/, ...); default LCM_MODELS_DIR")
    for field in dataclasses.fields(TrainingConfig):
        if field.name in _SKIP:
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(field.type), float)
            parser.add_argument(flag, type=kind, default=None, help=f"default: {field.default}")
    return parser


class _CliReporter:
    """tqdm progress with the loss; SIGINT asks the loop to checkpoint and stop."""

    def __init__(self, main_process: bool):
        self.bar = None
        self.main = main_process
        self.stop = False
        self.previous = signal.signal(signal.SIGINT, self._interrupt)

    def close(self) -> None:
        signal.signal(signal.SIGINT, self.previous)
        if self.bar is not None:
            self.bar.close()

    def _interrupt(self, *_):
        self.stop = True

    def step(self, step) -> None:
        if not self.main:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=step.total, initial=step.i - 1, desc="training")
        self.bar.update(step.i - self.bar.n)
        self.bar.set_postfix_str(step.text or "")

    def interrupted(self) -> bool:
        return self.stop


def main(argv: list[str] | None = None) -> int:
    from .. import paths, progress
    from ..errors import Interrupted, LCMError

    args = build_parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingConfig) if f.name not in _SKIP}
    overrides["method"] = args.method
    try:
        if args.config:
            config = TrainingConfig.from_toml(args.config, **overrides)
        else:
            config = TrainingConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
        if args.models_dir:
            paths.configure(paths.LocalFolders(args.models_dir))
        from ..models import load_checkpoint

        model = Path(args.model) if Path(args.model).exists() else args.model
        handles = load_checkpoint(model, dtype=args.dtype)
        from .lcd import train_lcd
        from .lcf import train_lcf

        reporter = _CliReporter(_is_main_process())
        try:
            with progress.use(reporter):
                result = (train_lcf if config.method == "lcf" else train_lcd)(*handles, config)
        finally:
            reporter.close()
    except Interrupted:
        print("interrupted: checkpoint written; run again with --resume to continue", file=sys.stderr)
        return 130
    except LCMError as exc:
        print(f"error: {exc.message}" + (f"\n{exc.details}" if exc.details else ""), file=sys.stderr)
        return 2
    if _is_main_process():
        print(f"saved {result.saved_name}; loss log {result.log_path}")
    return 0


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


if __name__ == "__main__":
    sys.exit(main())
