"""The demo family's quality measure: few-step LCM against its many-step teacher.

A fixed set of prompts × seeds; each method makes one 64×64 image per pair from the same
initial noise (CPU generators seeded per image, as the LCM Sampler and diffusers both
draw it). Adherence is what `checker.check` recovers from the pixels (per attribute, and
"all": every attribute right); the distance to the data is the Fréchet distance of
`features.image_features` between the generated images and held-out dataset images.
The teacher runs in diffusers' own `StableDiffusionPipeline` with `DDIMScheduler` (the
reference); the LCM-LoRA and LCF rows run through our loader, LoRA loader and sampler.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checker, features
from .family import LCM_LORA_NAME, STRIPED_LORA_NAME, TEACHER_NAME
from .shapes import Attributes, random_attributes, render, sample

ATTRIBUTES = ("colour", "shape", "background", "position")
PROMPT_SEED = 20261128
REFERENCE_SEED = 99
TEACHER_GUIDANCE = 5.0


@dataclass(frozen=True)
class PromptSet:
    """`prompts × seeds` pairs: pair (p, s) is prompt `p` drawn with seed `s`."""

    attributes: tuple[Attributes, ...]
    seeds: tuple[int, ...]

    @classmethod
    def make(cls, prompts: int, seeds: int, striped: bool = False) -> "PromptSet":
        rng = np.random.default_rng([PROMPT_SEED, int(striped)])
        return cls(tuple(random_attributes(rng, 1.0 if striped else 0.0) for _ in range(prompts)),
                   tuple(range(1000, 1000 + seeds)))

    @property
    def striped(self) -> bool:
        """Whether the expected images are striped (the style set): stripes are then scored."""
        return any(a.striped for a in self.attributes)

    @property
    def captions(self) -> list[str]:
        """The prompts, in the words the family knows: "striped" is the LCF LoRA's style,
        not a word of the prompt."""
        return [a.caption(style_word=False) for a in self.attributes]

    def __len__(self) -> int:
        return len(self.attributes) * len(self.seeds)


@dataclass
class Row:
    """One method's scores: per-attribute accuracy and `all` in percent, the Fréchet
    distance to held-out data, and seconds per image (this machine)."""

    method: str
    steps: int
    accuracy: dict[str, float]
    frechet: float
    seconds_per_image: float
    note: str = ""
    images: list = field(default_factory=list, repr=False)


def score(images: list, expected: list[Attributes], striped: bool) -> dict[str, float]:
    """Percent of images whose recovered attribute matches, per attribute, for all at once, and
    for all but the position (which the shipped teacher does not take from the prompt)."""
    keys = ATTRIBUTES + (("striped",) if striped else ())
    checks = [checker.check(image, attrs) for image, attrs in zip(images, expected)]
    result = {k: 100.0 * float(np.mean([c.correct[k] for c in checks])) for k in keys}
    result["all"] = 100.0 * float(np.mean([all(c.correct[k] for k in keys) for c in checks]))
    result["all but position"] = 100.0 * float(np.mean([all(c.correct[k] for k in keys if k != "position")
                                                        for c in checks]))
    return result


def reference_features(count: int, striped: bool) -> np.ndarray:
    """Features of `count` held-out dataset images (dataset seed `REFERENCE_SEED`)."""
    return features.dataset_features(sample(REFERENCE_SEED, i, 1.0 if striped else 0.0)[0] for i in range(count))


def _row(method: str, steps: int, images: list, prompts: PromptSet, reference: np.ndarray, seconds: float,
         note: str = "") -> Row:
    expected = [a for _ in prompts.seeds for a in prompts.attributes]
    frechet = features.frechet_distance(features.dataset_features(images), reference)
    return Row(method, steps, score(images, expected, prompts.striped), frechet, seconds / len(images), note, images)


def _to_pil(array: np.ndarray) -> list:
    from PIL import Image

    return [Image.fromarray(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)) for a in array]


def teacher_rows(models_dir: Path, prompts: PromptSet, steps_list: list[int], reference: np.ndarray,
                 guidance: float = TEACHER_GUIDANCE) -> list[Row]:
    """The teacher with DDIM at each step count and CFG `guidance`, in diffusers' pipeline."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(models_dir / "diffusers" / TEACHER_NAME, safety_checker=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for steps in steps_list:
        start, images = time.perf_counter(), []
        for seed in prompts.seeds:
            gens = [torch.Generator("cpu").manual_seed(seed) for _ in prompts.attributes]
            out = pipe(prompts.captions, negative_prompt=[""] * len(prompts.attributes), num_inference_steps=steps,
                       guidance_scale=guidance, generator=gens, output_type="np").images
            images += _to_pil(out)
        rows.append(_row("teacher DDIM", steps, images, prompts, reference, time.perf_counter() - start,
                         f"CFG {guidance:g}"))
    return rows


VARIANTS = {"teacher": "teacher, LCM sampler (before LCD)", "lcm-lora": "LCM-LoRA",
            "striped": "LCM-LoRA + LCF striped"}


def lcm_rows(models_dir: Path, prompts: PromptSet, steps_list: list[int], reference: np.ndarray,
             variant: str = "lcm-lora", guidance: float = 1.0) -> list[Row]:
    """Our loader, LoRA loader, text encoder, LCM Sampler and VAE decode on the teacher
    alone (`teacher`: the student before distillation), with the LCM-LoRA (`lcm-lora`), or
    with the LCM-LoRA and the LCF striped LoRA (`striped`)."""
    import torch

    from .. import images as image_ops
    from ..lora.apply import apply_lora
    from ..models.load import load_checkpoint
    from ..sampling.options import SamplingOptions
    from ..sampling.sampler import sample as lcm_sample
    from ..text.encode import encode_text

    model, clip, vae = load_checkpoint(models_dir / "diffusers" / TEACHER_NAME, dtype="fp32", device="cpu")
    if variant != "teacher":
        model, _ = apply_lora(model, None, models_dir / "loras" / LCM_LORA_NAME, 1.0, 0.0)
    if variant == "striped":
        model, _ = apply_lora(model, None, models_dir / "loras" / STRIPED_LORA_NAME, 1.0, 0.0, kind="style")
    method = VARIANTS[variant]
    empty = encode_text(clip, "")
    rows = []
    for steps in steps_list:
        start, batches = time.perf_counter(), {}
        for p, caption in enumerate(prompts.captions):
            latent = {"samples": torch.zeros(len(prompts.seeds), 4, 8, 8), "batch_index": list(prompts.seeds)}
            options = SamplingOptions(seed=0, steps=steps, guidance_scale=guidance)
            out = lcm_sample(model, encode_text(clip, caption), latent, options, negative=empty if guidance > 1 else None)
            batches[p] = _to_pil(image_ops.decode(vae, out).numpy())
        images = [batches[p][s] for s in range(len(prompts.seeds)) for p in range(len(prompts.attributes))]
        rows.append(_row(method, steps, images, prompts, reference, time.perf_counter() - start,
                         f"guidance {guidance:g}"))
    return rows


def data_row(prompts: PromptSet, reference: np.ndarray) -> Row:
    """The ceiling: dataset images of the same prompts (the checker's own error rate)."""
    rng = np.random.default_rng(7)
    start = time.perf_counter()
    images = [render(a, rng) for _ in prompts.seeds for a in prompts.attributes]
    return _row("dataset images", 0, images, prompts, reference, time.perf_counter() - start, "real")


def markdown(rows: list[Row], striped_rows: tuple[Row, ...] = ()) -> str:
    """The quality table as Markdown."""
    head = ("| method | steps | all % | all but position % | colour % | shape % | background % | position % "
            "| striped % | Fréchet ↓ | s/image |")
    lines = [head, "|" + "---|" * 11]
    for row in [*rows, *striped_rows]:
        a = row.accuracy
        cells = [row.method + (f" ({row.note})" if row.note else ""), str(row.steps) if row.steps else "–",
                 f"{a['all']:.1f}", f"{a['all but position']:.1f}", *[f"{a[k]:.1f}" for k in ATTRIBUTES],
                 f"{a['striped']:.1f}" if "striped" in a else "–", f"{row.frechet:.3f}", f"{row.seconds_per_image:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
