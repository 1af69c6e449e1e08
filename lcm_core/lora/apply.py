"""Apply a LoRA file to model handles: match, check, and append patches (never merge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FamilyMismatchError, LoraError
from ..models.handles import FAMILY_NAMES
from .adapters import fits
from .family import ARCH, KINDS, detect_method, family_from_metadata, guess_family
from .formats import LoraFile, read_lora, unmatched_error
from .keymap import Target, clip_names, is_text_encoder_key, unet_names
from .patching import WeightPatch


def _family_name(family: str) -> str:
    return FAMILY_NAMES.get(family, family)


def _mismatch(lora: LoraFile, made_for: str, family: str) -> FamilyMismatchError:
    return FamilyMismatchError(
        f"lora {lora.name!r} is made for {_family_name(made_for)}, but the model is {_family_name(family)}",
        input_name="lora_name",
        details=f"Pick a LoRA trained for {_family_name(family)} (or load a {_family_name(made_for)} checkpoint).")


def match_lora(lora: LoraFile, family: str, unet: Any | None, encoders: tuple | None
               ) -> tuple[dict[str, Target], dict[str, Target]]:
    """`(unet_matches, clip_matches)`: each file module mapped to the weight it patches.

    Refuses the file before anything changes: `FamilyMismatchError` when it is made for
    another family (by header, or when keys or shapes fail and the keys point to another
    family), `LoraError` listing the keys that match no module otherwise. Text-encoder
    modules are only checked when `encoders` is given.
    """
    meta_family = family_from_metadata(lora.metadata)
    if meta_family and ARCH[meta_family] != ARCH.get(family, family):
        raise _mismatch(lora, meta_family, family)
    unet_table = unet_names(unet) if unet is not None else {}
    clip_table = clip_names(encoders, family) if encoders else {}
    unet_hits: dict[str, Target] = {}
    clip_hits: dict[str, Target] = {}
    bad: list[str] = []
    wrong_shape: list[str] = []
    for name, adapter in lora.adapters.items():
        te = is_text_encoder_key(name)
        table, hits = (clip_table, clip_hits) if te else (unet_table, unet_hits)
        if (encoders is None) if te else (unet is None):
            continue
        target = table.get(name)
        if target is None:
            bad.append(name)
        elif not fits(adapter, target.shape):
            wrong_shape.append(name)
        else:
            hits[name] = target
    if bad or wrong_shape:
        made_for = guess_family(lora)
        if made_for and ARCH[made_for] != ARCH.get(family, family):
            raise _mismatch(lora, made_for, family)
        keys = [k for n in bad + wrong_shape for k in lora.key_of[n]]
        why = f"match no module of the {_family_name(family)} model"
        if wrong_shape and not bad:
            why = f"have shapes that do not fit the {_family_name(family)} model"
        raise unmatched_error(lora.name, keys, len(lora.tensors), why,
                              hint="Is it made for another model family, or a format we do not read?")
    return unet_hits, clip_hits


def _patches(lora: LoraFile, hits: dict[str, Target], strength: float) -> tuple[WeightPatch, ...]:
    if strength == 0:
        return ()
    return tuple(WeightPatch(t.module, lora.adapters[name], float(strength), t.component, lora.name)
                 for name, t in hits.items())


def apply_lora(model, clip, path: str | Path, strength_model: float, strength_clip: float,
               kind: str = "auto"):
    """New `(LCMModel, LCMClip | None)` handles with the LoRA at `path` appended to their
    patches; the given handles and their modules are left as they are.

    `kind` (`auto`, `lcm`, `tcd`, `hyper-sd`, `pcm`, `dmd2`, `style`) says what the LoRA
    is; `auto` reads it from the file name and header. A few-step LoRA sets
    `LCMModel.method`. Strength 0 adds no patches for that side; negative strengths subtract.
    """
    if kind not in KINDS:
        raise LoraError(f"unknown lora kind {kind!r}", input_name="lora_kind", details=f"Use one of {', '.join(KINDS)}.")
    if clip is not None and clip.family != model.family:
        raise FamilyMismatchError(
            f"the clip is {_family_name(clip.family)} but the model is {_family_name(model.family)}", input_name="clip")
    lora = read_lora(path)
    unet_hits, clip_hits = match_lora(lora, model.family, model.unet,
                                      tuple(clip.text_encoders) if clip is not None else None)
    if not unet_hits and not clip_hits:
        raise LoraError(f"lora {lora.name!r} patches nothing in this model", input_name="lora_name",
                        details="It holds only text-encoder weights; connect a clip to apply it.")
    method = detect_method(lora.name, lora.metadata, kind)
    new_model = model.replace(patches=tuple(model.patches) + _patches(lora, unet_hits, strength_model),
                              method=method if method and strength_model != 0 else model.method)
    new_clip = None
    if clip is not None:
        new_clip = clip.replace(patches=tuple(clip.patches) + _patches(lora, clip_hits, strength_clip))
    return new_model, new_clip
