"""Realistic checkpoints with random weights, for loader tests and anyone needing a model.

- Tiny ones: diffusers modules with the families' block structure but small widths
  (`tiny_components`), written as single files in the original SD key layout
  (`write_single_file`, via `to_ldm`, the inverse of diffusers' conversion) or as
  diffusers folders (`write_diffusers_folder`). Their configs live in a tiny config root
  (`write_tiny_configs`) used through `lcm_core.models.configs.use_root`.
- Full-size-architecture SD1.5 / SDXL single files in the exact key layout of the
  manifests in `shared/fixtures/` (`write_full_size`), streamed to disk in fp16 so
  writing never holds the model in memory.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import torch

from lcm_core.models import configs
from lcm_core.models.detect import LDM_UNET, LDM_VAE, SD1_CLIP, SD2_CLIP, SDXL_CLIP_G, SDXL_CLIP_L

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIRS = (REPO_ROOT.parent / "shared" / "fixtures", Path("/work/shared/fixtures"))
TINY_CLIP = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32)
TINY_CLIP_2 = dict(TINY_CLIP, hidden_size=48, projection_dim=48)  # widths differ, as ViT-L's and bigG's do
TINY_VAE = dict(block_out_channels=[8, 16, 32, 32], norm_num_groups=8, layers_per_block=1, sample_size=64)
TINY_UNET = {
    "sd15": dict(block_out_channels=[32, 32, 64, 64], norm_num_groups=8, attention_head_dim=2, cross_attention_dim=32,
                 sample_size=8),
    "sd2": dict(block_out_channels=[32, 32, 64, 64], norm_num_groups=8, attention_head_dim=[2, 2, 4, 4],
                cross_attention_dim=32, sample_size=8),
    "sdxl": dict(block_out_channels=[32, 64, 64], norm_num_groups=8, attention_head_dim=[2, 4, 4],
                 transformer_layers_per_block=[1, 1, 2], cross_attention_dim=32 + 48, addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=48 + 6 * 8, sample_size=8),
}
TINY_UNET["sd15-lcm"] = TINY_UNET["sd15"]
TINY_UNET["sd2-v"] = TINY_UNET["sd2"]
SD2_EXTRA_LAYERS = 1
RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
          ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
            "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
            "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
VAE_ATTN = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out."))


def manifest_path(name: str) -> Path:
    """`shared/fixtures/<name>` beside the repo (CI), else the workspace copy."""
    env = os.environ.get("LCM_FIXTURE_MANIFESTS")
    dirs = (Path(env),) + MANIFEST_DIRS if env else MANIFEST_DIRS
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"key manifest {name} not found; looked in {', '.join(map(str, dirs))}. "
                            "Set LCM_FIXTURE_MANIFESTS to the folder holding shared/fixtures.")


# --- tiny models -------------------------------------------------------------------------

def write_tiny_configs(root: Path) -> Path:
    """A config root like the repo's, with every family shrunk to tiny widths."""
    for family in configs.CONFIG_DIRS:
        src = configs.CONFIG_ROOT / family
        for comp_dir in src.iterdir():
            for file in comp_dir.iterdir():
                data = json.loads(file.read_text())
                if comp_dir.name == "unet":
                    data.update(TINY_UNET[family])
                elif comp_dir.name == "vae":
                    data.update(TINY_VAE)
                elif comp_dir.name.startswith("text_encoder"):
                    data.update(TINY_CLIP_2 if comp_dir.name == "text_encoder_2" else TINY_CLIP)
                out = root / family / comp_dir.name / file.name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(data, indent=1))
    return root


def _random(build, seed: int):
    """`build()` on the meta device, then filled with random weights (norm weights near 1)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        module = build()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, p in module.state_dict().items():
        noise = 0.1 * torch.randn(p.shape, generator=gen)
        state[name] = 1 + noise if name.endswith("weight") and ("norm" in name or p.ndim == 1) else noise
    module.load_state_dict(state, assign=True)
    return module.eval()


def tiny_components(family: str, root: Path, lcm: bool = False, seed: int = 0) -> dict:
    """Diffusers modules (unet, vae, text_encoder[, text_encoder_2]) of a tiny `family`
    model with random weights, from the tiny config root `root`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with configs.use_root(root):
        unet_cfg = configs.component_config(family, "unet", lcm=lcm)
        if lcm:
            unet_cfg["time_cond_proj_dim"] = 256
        vae_cfg = configs.component_config(family, "vae")
        out = {"unet": _random(lambda: UNet2DConditionModel.from_config(unet_cfg), seed),
               "vae": _random(lambda: AutoencoderKL.from_config(vae_cfg), seed + 1)}
        for i, name in enumerate(("text_encoder", "text_encoder_2") if family == "sdxl" else ("text_encoder",)):
            cfg = configs.component_config(family, name)
            cls = CLIPTextModelWithProjection if "CLIPTextModelWithProjection" in cfg["architectures"] \
                else CLIPTextModel
            out[name] = _random(lambda: cls(CLIPTextConfig.from_dict(cfg)), seed + 2 + i)
    return out


def _unet_key(key: str, config: dict) -> str:
    per = config["layers_per_block"] + 1
    up_attn = [t.startswith("CrossAttn") for t in config["up_block_types"]]
    for old, new in UNET_TOP.items():
        if key.startswith(old + "."):
            return new + key[len(old):]
    parts = key.split(".")
    if parts[0] in ("down_blocks", "up_blocks", "mid_block"):
        if parts[0] == "mid_block":
            kind, j, rest = parts[1], int(parts[2]), parts[3:]
            ldm = f"middle_block.{2 * j}" if kind == "resnets" else "middle_block.1"
        else:
            i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
            if parts[0] == "down_blocks":
                ldm = f"input_blocks.{per * (i + 1)}.0" if kind == "downsamplers" else \
                    f"input_blocks.{per * i + j + 1}.{0 if kind == 'resnets' else 1}"
                if kind == "downsamplers":
                    rest = ["op"] + rest[1:]
            else:
                ldm = f"output_blocks.{per * i + per - 1}.{2 if up_attn[i] else 1}" if kind == "upsamplers" else \
                    f"output_blocks.{per * i + j}.{0 if kind == 'resnets' else 1}"
        tail = ".".join(rest)
        if kind == "resnets":
            for old, new in RESNET:
                if tail.startswith(old + "."):
                    tail = new + tail[len(old):]
        return f"{ldm}.{tail}"
    return key


def _vae_key(key: str, n_blocks: int) -> str:
    parts = key.split(".")
    if len(parts) > 2 and parts[1] in ("down_blocks", "up_blocks"):
        i, kind, j, rest = int(parts[2]), parts[3], parts[4], ".".join(parts[5:])
        if parts[1] == "down_blocks":
            head = f"{parts[0]}.down.{i}." + ("downsample" if kind == "downsamplers" else f"block.{j}")
        else:
            head = f"{parts[0]}.up.{n_blocks - 1 - i}." + ("upsample" if kind == "upsamplers" else f"block.{j}")
        return f"{head}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
    if len(parts) > 2 and parts[1] == "mid_block":
        if parts[2] == "resnets":
            return f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:]).replace("conv_shortcut",
                                                                                              "nin_shortcut")
        tail = ".".join(parts[4:]) + "."
        for old, new in VAE_ATTN:
            if tail.startswith(old):
                tail = new + tail[len(old):]
        return f"{parts[0]}.mid.attn_1.{tail[:-1]}"
    return key.replace("conv_norm_out", "norm_out")


def _openclip(state: dict, extra_layers: int, hidden: int) -> dict:
    state = {k if k.startswith(("text_model.", "text_projection")) else "text_model." + k: v for k, v in state.items()}
    out, qkv = {}, {}
    for key, value in state.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
            continue
        key = key[len("text_model."):]
        for old, new in (("embeddings.token_embedding.weight", "token_embedding.weight"),
                         ("embeddings.position_embedding.weight", "positional_embedding"),
                         ("final_layer_norm.", "ln_final."), ("encoder.layers.", "transformer.resblocks."),
                         ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                         ("mlp.fc2", "mlp.c_proj"), ("self_attn.", "attn.")):
            key = key.replace(old, new)
        for name in ("q", "k", "v"):
            if f".attn.{name}_proj." in key:
                base, kind = key.split(f".attn.{name}_proj.")
                qkv.setdefault((base, kind), {})[name] = value
                break
        else:
            out[key] = value
    for (base, kind), parts in qkv.items():
        out[f"{base}.attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    n = 1 + max(int(k.split(".")[2]) for k in out if k.startswith("transformer.resblocks."))
    gen = torch.Generator().manual_seed(n)
    for layer in range(n, n + extra_layers):  # SD2's unused last layer, as real files have it
        for key in [k for k in out if k.startswith(f"transformer.resblocks.{n - 1}.")]:
            out[key.replace(f"resblocks.{n - 1}.", f"resblocks.{layer}.")] = torch.randn(out[key].shape, generator=gen)
    if "text_projection" not in out:
        out["text_projection"] = torch.randn(hidden, hidden, generator=gen) * 0.1
    return out


def to_ldm(components: dict, family: str) -> dict:
    """The original single-file state dict (`model.diffusion_model.*`, ...) of diffusers modules."""
    unet = components["unet"]
    sd = {LDM_UNET + _unet_key(k, unet.config): v for k, v in unet.state_dict().items()}
    n_vae = len(components["vae"].config.block_out_channels)
    for key, value in components["vae"].state_dict().items():
        new = _vae_key(key, n_vae)
        if ".mid.attn_1." in new and new.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]
        sd[LDM_VAE + new] = value
    te = components["text_encoder"]
    te_state = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in te.state_dict().items()}
    position_ids = torch.arange(te.config.max_position_embeddings)[None]
    if family == "sdxl":
        sd.update({SDXL_CLIP_L + k: v for k, v in te_state.items()})
        sd[SDXL_CLIP_L + "text_model.embeddings.position_ids"] = position_ids
        te2 = components["text_encoder_2"]
        sd.update({SDXL_CLIP_G + k: v for k, v in _openclip(te2.state_dict(), 0, te2.config.hidden_size).items()})
    elif family.startswith("sd2"):
        sd.update({SD2_CLIP + k: v for k, v in _openclip(te.state_dict(), SD2_EXTRA_LAYERS,
                                                          te.config.hidden_size).items()})
    else:
        sd.update({SD1_CLIP + k: v for k, v in te_state.items()})
        sd[SD1_CLIP + "text_model.embeddings.position_ids"] = position_ids
    return {k: v.detach().contiguous() for k, v in sd.items()}


def write_single_file(path: Path, family: str, root: Path, *, lcm: bool = False, seed: int = 0,
                      metadata: dict | None = None, parts: tuple = ("unet", "vae", "clip"),
                      v_std: float | None = None) -> dict:
    """Write a tiny single-file checkpoint in the original layout; returns its components.

    `parts` selects what goes in the file; `v_std` sets the std of the tensor ComfyUI's
    SD2 v-prediction heuristic reads (`output_blocks.11.1.transformer_blocks.0.norm1.bias`;
    by default 0.2 for `sd2-v`, 0.02 for `sd2`).
    """
    from safetensors.torch import save_file

    comps = tiny_components(family, root, lcm=lcm, seed=seed)
    if v_std is None and family.startswith("sd2"):
        v_std = 0.2 if family == "sd2-v" else 0.02
    if v_std is not None:
        with torch.no_grad():
            bias = comps["unet"].up_blocks[3].attentions[2].transformer_blocks[0].norm1.bias
            bias.copy_(torch.linspace(-1, 1, bias.numel()) * v_std / torch.linspace(-1, 1, bias.numel()).std(
                unbiased=False))
    sd = to_ldm(comps, family)
    keep = {"unet": (LDM_UNET,), "vae": (LDM_VAE,), "clip": ("cond_stage_model.", "conditioner.")}
    prefixes = tuple(p for part in parts for p in keep[part])
    save_file({k: v for k, v in sd.items() if k.startswith(prefixes)}, str(path), metadata=metadata)
    return comps


def write_diffusers_folder(path: Path, family: str, root: Path, *, lcm: bool = False, seed: int = 0,
                           unet_only: bool = False, te_prefix: bool = False) -> dict:
    """Write a tiny diffusers folder (or, `unet_only`, a folder holding just `unet/`).

    `te_prefix` writes text encoder weights with the `text_model.` prefix, as folders
    saved with transformers 4 have them.
    """
    from safetensors.torch import save_file

    from lcm_core.text.tokenizer import family_tokenizers

    comps = tiny_components(family, root, lcm=lcm, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    comps["unet"].save_pretrained(path / "unet")
    if unet_only:
        return comps
    comps["vae"].save_pretrained(path / "vae")
    index = {"_class_name": "StableDiffusionXLPipeline" if family == "sdxl" else "StableDiffusionPipeline",
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    names = ("text_encoder", "text_encoder_2") if family == "sdxl" else ("text_encoder",)
    for name, tokenizer in zip(names, family_tokenizers(family)):
        module = comps[name]
        module.save_pretrained(path / name)
        if te_prefix:
            state = {("" if k.startswith(("text_model.", "text_projection")) else "text_model.") + k: v.contiguous()
                     for k, v in module.state_dict().items()}
            save_file(state, str(path / name / "model.safetensors"), metadata={"format": "pt"})
        tok_dir = path / name.replace("text_encoder", "tokenizer")
        tokenizer.save_pretrained(tok_dir)
        index[name] = ["transformers", type(module).__name__]
        index[name.replace("text_encoder", "tokenizer")] = ["transformers", "CLIPTokenizer"]
    with configs.use_root(root):
        sched = configs.scheduler_config(family, lcm=lcm)
    (path / "scheduler").mkdir(exist_ok=True)
    (path / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched))
    index["scheduler"] = ["diffusers", sched["_class_name"]]
    (path / "model_index.json").write_text(json.dumps(index))
    return comps


# --- full-size files, streamed ----------------------------------------------------------

def _pool(seed: int, center: float, size: int = 1 << 23) -> np.ndarray:
    """Random fp16 values, stored twice in a row so any window of `size` is one slice."""
    rng = np.random.default_rng(seed)
    values = (center + 0.02 * rng.standard_normal(size)).astype(np.float16)
    return np.concatenate([values, values])


def _window(pool: np.ndarray, start: int, n: int) -> np.ndarray:
    size = pool.size // 2
    return pool[start:start + n] if n <= size else np.resize(pool[start:start + size], n)


def write_full_size(path: Path, manifest: str, seed: int = 0, metadata: dict | None = None) -> Path:
    """Stream a full-size fp16 single file with every tensor of `manifest` (name -> shape).

    Values come from random pools (norm weights around 1, everything else around 0,
    std 0.02); `position_ids` are 0..76 as int64, as in real files.
    """
    shapes = json.loads(manifest_path(manifest).read_text())
    weights, ones = _pool(seed, 0.0), _pool(seed + 1, 1.0)
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for key in sorted(shapes):
        n = int(np.prod(shapes[key])) if shapes[key] else 1
        dtype, size = ("I64", 8) if key.endswith("position_ids") else ("F16", 2)
        header[key] = {"dtype": dtype, "shape": shapes[key], "data_offsets": [offset, offset + n * size]}
        offset += n * size
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(seed + 2)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for key in sorted(shapes):
            n = int(np.prod(shapes[key])) if shapes[key] else 1
            if key.endswith("position_ids"):
                f.write(np.arange(n, dtype=np.int64).tobytes())
                continue
            is_norm = key.endswith("weight") and len(shapes[key]) == 1
            pool = ones if is_norm else weights
            f.write(_window(pool, int(rng.integers(0, pool.size // 2)), n).tobytes())
    return path


SAFETENSORS_DTYPES = {"F16": np.float16, "F32": np.float32, "I64": np.int64, "BF16": None}


def mmap_state_dict(path: Path) -> dict:
    """Every tensor of a safetensors file as a read-only view of the memory-mapped file:
    nothing is copied, so a reference loader can read a full-size file without holding it."""
    import warnings

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns that the arrays are read-only
        for key, info in header.items():
            if key == "__metadata__":
                continue
            start, end = info["data_offsets"]
            array = data[start:end].view(SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
            out[key] = torch.from_numpy(array)
    return out


def tensor_digests(module) -> dict[str, str]:
    """name -> digest of the exact bytes of each tensor of `module` (for comparing two
    modules that do not fit in memory together)."""
    import hashlib

    out = {}
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
        out[name.removeprefix("text_model.")] = f"{tensor.dtype}:{tuple(tensor.shape)}:" + \
            hashlib.blake2b(flat, digest_size=16).hexdigest()
    return out
