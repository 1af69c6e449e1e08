"""What a sampling run is asked to do, and the guidance each few-step method supports."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

SAMPLERS = ("lcm", "tcd")
MAX_STEPS = 50


@dataclass(frozen=True)
class GuidanceAdvice:
    """The method authors' advice: the value to start from, the usual range, and the
    value above which images burn (the run log warns past it)."""

    recommended: float
    usual: tuple[float, float]
    burns_above: float


# Per-method guidance. `lcm` is the w-embedding of an LCM-distilled UNet (LCM_Dreamshaper
# ships 8.0); the LoRA methods use real CFG, where anything much above 2 overcooks.
GUIDANCE_ADVICE: dict[str, GuidanceAdvice] = {
    "lcm": GuidanceAdvice(8.0, (1.0, 10.0), 15.0),
    "lcm-lora": GuidanceAdvice(1.5, (1.0, 2.0), 3.0),
    "tcd": GuidanceAdvice(1.0, (1.0, 2.0), 3.0),
    "hyper-sd": GuidanceAdvice(1.0, (1.0, 2.0), 3.0),
    "pcm": GuidanceAdvice(1.0, (1.0, 2.0), 3.0),
    "dmd2": GuidanceAdvice(1.0, (1.0, 1.5), 2.0),
}


@dataclass(frozen=True)
class SamplingOptions:
    """One sampling run.

    - `seed`: image k of a batch draws all its noise from its own CPU generator seeded
      `seed + k` (or `seed + batch_index[k]` when the LATENT carries `batch_index`), so
      every image of a batch can be reproduced alone, on any device.
    - `steps`: 1-50 model calls; `timesteps`, when given (descending, e.g.
      `(999, 749, 499, 249)`), replaces the automatic schedule and `steps`.
    - `guidance_scale`: w-embedding for LCM-distilled UNets, real CFG (needs a negative)
      above 1.0 otherwise; see `GUIDANCE_ADVICE` for each method's range.
    - `denoise`: img2img strength in (0, 1]; 1.0 ignores the latent's content (txt2img).
    - `sampler`: `lcm` (LCMScheduler) or `tcd` (TCDScheduler, stochasticity `tcd_gamma`).
    - `original_inference_steps`: the skipping-step schedule the model was distilled with.
    """

    seed: int = 0
    steps: int = 4
    guidance_scale: float = 1.5
    denoise: float = 1.0
    sampler: str = "lcm"
    original_inference_steps: int = 50
    timesteps: tuple[int, ...] | None = None
    tcd_gamma: float = 0.3

    def validated(self) -> "SamplingOptions":
        """These options, or an `InputError` naming the first bad one and its valid range."""
        if self.sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {self.sampler!r}", input_name="sampler_name",
                             details=f"Use one of {SAMPLERS}.")
        if not self.timesteps and not 1 <= self.steps <= MAX_STEPS:
            raise InputError(f"steps must be 1..{MAX_STEPS}, got {self.steps}", input_name="steps",
                             details="LCM and TCD need 1-8 steps; 4 is the usual choice.")
        if not 0.0 < self.denoise <= 1.0:
            raise InputError(f"denoise must be in (0, 1], got {self.denoise}", input_name="denoise",
                             details="1.0 generates from noise; 0.3-0.7 keeps the input image's layout. "
                                     "0 would change nothing: bypass the sampler instead.")
        if not 1 <= self.original_inference_steps <= 1000:
            raise InputError(f"original_inference_steps must be 1..1000, got {self.original_inference_steps}",
                             input_name="original_inference_steps",
                             details="LCM models were distilled with 50; leave it unless the model card says otherwise.")
        if not self.timesteps and self.steps > self.original_inference_steps:
            raise InputError(f"steps {self.steps} exceed original_inference_steps {self.original_inference_steps}",
                             input_name="steps", details="Lower steps or raise original_inference_steps.")
        if not 0.0 <= self.tcd_gamma <= 1.0:
            raise InputError(f"tcd_gamma must be in [0, 1], got {self.tcd_gamma}", input_name="tcd_gamma",
                             details="0 is deterministic, 1 fully stochastic; TCD's authors use 0.3.")
        if self.timesteps:
            check_timesteps(self.timesteps)
        return self


def check_timesteps(timesteps: tuple[int, ...]) -> None:
    """Refuse a timestep list that is not strictly descending inside 0..999."""
    bad = [t for t in timesteps if not 0 <= t <= 999]
    if bad:
        raise InputError(f"timesteps must lie in 0..999, got {bad}", input_name="timesteps",
                         details="Example: 999,749,499,249.")
    if any(b >= a for a, b in zip(timesteps, timesteps[1:])):
        raise InputError(f"timesteps must be strictly descending, got {list(timesteps)}", input_name="timesteps",
                         details="Example: 999,749,499,249.")


def parse_timesteps(text: str) -> tuple[int, ...] | None:
    """`"999, 749,499"` as `(999, 749, 499)`; empty text means the automatic schedule (None)."""
    parts = [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"timesteps must be whole numbers separated by commas, got {text!r}",
                         input_name="timesteps", details="Example: 999,749,499,249. Leave empty for automatic.")
    check_timesteps(values)
    return values
