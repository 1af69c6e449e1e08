"""Tiny models under the names the example workflows use, for running them headless.

Checkpoints come from the models branch's writers (`support.checkpoints`); LoRAs are
written here in diffusers/PEFT naming on the attention projections of those modules.
"""

from __future__ import annotations

from pathlib import Path

PACK_NODES = {"LCMCheckpointLoader", "LCMLoraLoader", "LCMTextEncode", "LCMSampler", "LCMVAEDecode", "LCMVAEEncode"}
FIXTURE_CHECKPOINTS = {  # name in the example workflows → (family, LCM-distilled)
    "LCM_Dreamshaper_v7.safetensors": ("sd15", True),
    "v1-5-pruned-emaonly.safetensors": ("sd15", False),
    "sd_xl_base_1.0.safetensors": ("sdxl", False),
}
FIXTURE_LORAS = {  # LoRA name → (checkpoint it fits, patches the text encoder too)
    "lcm-lora-sdv1-5.safetensors": ("v1-5-pruned-emaonly.safetensors", False),
    "papercut.safetensors": ("v1-5-pruned-emaonly.safetensors", True),
    "lcm-lora-sdxl.safetensors": ("sd_xl_base_1.0.safetensors", False),
}


def write_peft_lora(path: Path, components: dict, with_text_encoder: bool, rank: int = 2, seed: int = 0) -> None:
    """A diffusers/PEFT-named LoRA on every attention projection of the tiny modules."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    owners = [("unet", components["unet"], ("to_q", "to_k", "to_v", "to_out.0"))]
    if with_text_encoder:
        owners.append(("text_encoder", components["text_encoder"], ("q_proj", "k_proj", "v_proj", "out_proj")))
    state = {}
    for prefix, module, suffixes in owners:
        for name, layer in module.named_modules():
            if isinstance(layer, torch.nn.Linear) and name.endswith(suffixes):
                state[f"{prefix}.{name}.lora_A.weight"] = torch.randn(rank, layer.in_features, generator=g) * 0.1
                state[f"{prefix}.{name}.lora_B.weight"] = torch.randn(layer.out_features, rank, generator=g) * 0.1
    save_file(state, str(path))


def fixture_folders(tmp_path: Path, prompt: dict) -> tuple[Path, Path, Path]:
    """Tiny checkpoints and LoRAs under the names `prompt` uses, and an input image;
    returns (tiny config root, models dir, input dir)."""
    import numpy as np
    from PIL import Image

    from support import checkpoints

    root = checkpoints.write_tiny_configs(tmp_path / "configs")
    models, inputs = tmp_path / "models", tmp_path / "input"
    for sub in ("checkpoints", "loras"):
        (models / sub).mkdir(parents=True)
    inputs.mkdir()
    used = {v for node in prompt.values() for v in node["inputs"].values() if isinstance(v, str)}
    written = {}
    for name, (family, lcm) in FIXTURE_CHECKPOINTS.items():
        if name in used or any(FIXTURE_LORAS[lora][0] == name for lora in FIXTURE_LORAS if lora in used):
            written[name] = checkpoints.write_single_file(models / "checkpoints" / name, family, root, lcm=lcm)
    for name, (base, text) in FIXTURE_LORAS.items():
        if name in used:
            write_peft_lora(models / "loras" / name, written[base], text)
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(inputs / "example.png")
    return root, models, inputs
