"""LoRAs we save in kohya and PEFT layout reload to the same deltas, with our loader
and with diffusers'; the kohya names are the ones ComfyUI's LoraLoader maps."""

from __future__ import annotations

import re

import pytest
import torch

from lcm_core.errors import InputError
from lcm_core.lora import apply_lora, read_lora
from lcm_core.lora.save import save_lora
from support.lora_files import expected_delta, factors, model_handles, tiny_models, tiny_pipeline

COMFY_TE = re.compile(r"lora_te[12]?_text_model_encoder_layers_\d+_(mlp_fc[12]|self_attn_[qkv]_proj|self_attn_out_proj)$")


@pytest.fixture(scope="module", params=("sd15", "sdxl"))
def tiny(request):
    return tiny_models(request.param)


def _peft_dicts(tiny, fs):
    """What `get_peft_model_state_dict` returns for each model: keys relative to it."""
    unet, texts = {}, [{}, {}]
    for (comp, module), f in fs.items():
        target = unet if comp == "unet" else texts[int(comp[-1]) - 1]
        target[f"{module}.lora_A.weight"] = f["down"]
        target[f"{module}.lora_B.weight"] = f["up"]
    if tiny.family == "sdxl":
        return unet, {"text_encoder": texts[0], "text_encoder_2": texts[1]}
    return unet, texts[0]


@pytest.mark.parametrize("layout", ("kohya", "peft"))
def test_round_trip_with_ours_and_diffusers(tiny, layout, tmp_path):
    fs = factors(tiny, alpha=None, rank=4)
    unet_sd, text_sd = _peft_dicts(tiny, fs)
    path = save_lora(tmp_path / f"out_{layout}.safetensors", unet_sd, text_encoder_lora=text_sd,
                     family=tiny.family, layout=layout, alpha=2.0, metadata={"note": "round trip"})
    lora = read_lora(path)
    assert lora.metadata["note"] == "round trip" and lora.metadata["lcm_core.family"] == tiny.family
    want = {k: dict(f, alpha=torch.tensor(2.0)) for k, f in fs.items()}
    model, clip = model_handles(tiny)
    m2, c2 = apply_lora(model, clip, path, 0.5, 0.5)
    pipe = tiny_pipeline(tiny, tmp_path)
    pipe.load_lora_weights(str(path))
    pipe.fuse_lora(lora_scale=0.5)
    pipe.unload_lora_weights()
    theirs = {"unet": pipe.unet, "te1": pipe.text_encoder, "te2": getattr(pipe, "text_encoder_2", None)}
    bases = {comp: {k: v.clone() for k, v in root.state_dict().items()}
             for comp, root in (("unet", tiny.unet),) + tuple((f"te{i + 1}", e) for i, e in enumerate(tiny.encoders))}
    with m2.materialized() as unet, c2.materialized() as encoders:
        ours = {"unet": unet, "te1": encoders[0], "te2": encoders[1] if len(encoders) > 1 else None}
        for (comp, module), f in want.items():
            w = ours[comp].get_submodule(module).weight
            formula = bases[comp][f"{module}.weight"]
            assert not torch.equal(w, formula)
            formula = formula + 0.5 * expected_delta(f, tuple(w.shape))
            torch.testing.assert_close(w, formula, rtol=0, atol=1e-6)
            torch.testing.assert_close(theirs[comp].get_submodule(module).weight, formula, rtol=0, atol=1e-6)


def test_kohya_names_are_the_ones_comfyui_maps(tiny, tmp_path):
    fs = factors(tiny, alpha=None)
    unet_sd, text_sd = _peft_dicts(tiny, fs)
    path = save_lora(tmp_path / "k.safetensors", unet_sd, text_encoder_lora=text_sd, family=tiny.family,
                     layout="kohya")
    names = {k.rsplit(".", 2)[0] if k.endswith(".weight") else k.rsplit(".", 1)[0] for k in read_lora(path).tensors}
    unet_modules = {"lora_unet_" + m.replace(".", "_") for c, m in fs if c == "unet"}
    te = names - unet_modules
    assert unet_modules <= names
    assert te and all(COMFY_TE.match(n) for n in te), sorted(te)[:3]
    if tiny.family == "sdxl":
        assert any(n.startswith("lora_te1_") for n in te) and any(n.startswith("lora_te2_") for n in te)
    else:
        assert all(n.startswith("lora_te_") for n in te)


def test_save_is_atomic_and_never_overwrites(tiny, tmp_path):
    fs = factors(tiny, alpha=None, te=False)
    unet_sd, _ = _peft_dicts(tiny, fs)
    path = save_lora(tmp_path / "a.safetensors", unet_sd, family=tiny.family, layout="peft")
    stamp = path.read_bytes()
    with pytest.raises(InputError, match="exists"):
        save_lora(path, unet_sd, family=tiny.family, layout="kohya")
    assert path.read_bytes() == stamp
    save_lora(path, unet_sd, family=tiny.family, layout="kohya", overwrite=True)
    assert read_lora(path).layout == "kohya"
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
    with pytest.raises(InputError):
        save_lora(tmp_path / "b.safetensors", {"x.weight": torch.zeros(1)}, family=tiny.family, layout="peft")


def test_saved_file_gets_the_ordinary_file_mode(tiny, tmp_path):
    """The temp file behind the atomic write is private (0600); the saved LoRA must not be."""
    fs = factors(tiny, alpha=None, te=False)
    unet_sd, _ = _peft_dicts(tiny, fs)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    path = save_lora(tmp_path / "a.safetensors", unet_sd, family=tiny.family, layout="kohya")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
