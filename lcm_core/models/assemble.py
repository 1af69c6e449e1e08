"""Build diffusers/transformers modules without allocating weights, then give them tensors.

Modules are constructed under `accelerate.init_empty_weights` (parameters on the meta
device) and filled with `load_state_dict(..., assign=True)`, so loading holds about one
copy of each component's weights in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelFormatError


@dataclass
class Parts:
    """What one source provides; missing parts (None/empty) come from a base checkpoint."""

    family: str
    prediction_type: str = "epsilon"
    scheduler_config: dict = field(default_factory=dict)
    lcm_distilled: bool = False
    unet: Any = None
    vae: Any = None
    text_encoders: tuple = ()
    tokenizers: tuple = ()


def build_unet(config: dict):
    """An empty `UNet2DConditionModel` for `config`."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():
        return UNet2DConditionModel.from_config(config)


def build_vae(config: dict):
    """An empty `AutoencoderKL` for `config`."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL

    with init_empty_weights():
        return AutoencoderKL.from_config(config)


def build_text_encoder(config: dict):
    """An empty `CLIPTextModel` (or `CLIPTextModelWithProjection`, per `architectures`)."""
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cls = CLIPTextModelWithProjection if "CLIPTextModelWithProjection" in config.get("architectures", ()) \
        else CLIPTextModel
    with init_empty_weights():
        return cls(CLIPTextConfig.from_dict(config))


def _match_prefix(state_dict: dict, expected: set[str]) -> dict:
    """Accept CLIP state dicts with or without the `text_model.` prefix."""
    out = {}
    for key, value in state_dict.items():
        if key not in expected:
            if key.startswith("text_model.") and key[len("text_model."):] in expected:
                key = key[len("text_model."):]
            elif "text_model." + key in expected:
                key = "text_model." + key
        out[key] = value
    return out


def assign(module, state_dict: dict, *, what: str, source: str, input_name: str | None = None,
           device: Any = None):
    """Fill an empty `module` with `state_dict` (no copies); refuse when weights are missing
    or have the wrong shape. Returns the module in eval mode without gradients."""
    expected = module.state_dict()
    state_dict = _match_prefix(state_dict, set(expected))
    missing = sorted(set(expected) - set(state_dict))
    if missing:
        raise ModelFormatError(
            f"{source}: the {what} is missing {len(missing)} weights (first: {', '.join(missing[:3])})",
            input_name=input_name, details="The file is incomplete or is not the model family it looks like.")
    wrong = [k for k, v in expected.items() if tuple(state_dict[k].shape) != tuple(v.shape)]
    if wrong:
        k = wrong[0]
        raise ModelFormatError(
            f"{source}: {len(wrong)} {what} weights have unexpected shapes (first: {k} "
            f"{tuple(state_dict[k].shape)}, expected {tuple(expected[k].shape)})",
            input_name=input_name, details="The weights do not fit this family's architecture.")
    module.load_state_dict({k: state_dict[k] for k in expected}, strict=True, assign=True)
    if device is not None:
        module.to(device)
    module.eval()
    module.requires_grad_(False)
    return module
