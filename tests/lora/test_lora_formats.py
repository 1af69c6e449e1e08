"""Every layout and adapter kind patches exactly the merge formula, and matches
diffusers' `load_lora_weights` + `fuse_lora` where diffusers reads the layout."""

from __future__ import annotations

import pytest
import torch

from lcm_core.lora import apply_lora, read_lora
from support.lora_files import (CONV, expected_delta, factors, model_handles, save, tiny_models, tiny_pipeline,
                                write)

STRENGTHS = (0.5, 1.0, -0.7)
LAYOUTS = ("peft", "diffusers-old", "kohya", "kohya-ldm", "comfyui")
# Layouts diffusers 0.42 reads for each family; the others are checked against the formula only.
DIFFUSERS_READS = {(f, layout) for f in ("sd15", "sdxl") for layout in ("peft", "diffusers-old", "kohya")}
DIFFUSERS_READS.add(("sdxl", "kohya-ldm"))


@pytest.fixture(scope="module", params=("sd15", "sdxl"))
def tiny(request):
    return tiny_models(request.param)


def _inputs(tiny):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 4, 8, 8, generator=g)
    width = tiny.unet.config.cross_attention_dim
    enc = torch.randn(1, 5, width, generator=g)
    added = None
    if tiny.family == "sdxl":
        added = {"text_embeds": torch.randn(1, 32, generator=g), "time_ids": torch.tensor([[8., 8, 0, 0, 8, 8]])}
    ids = torch.tensor([[0, 5, 9, 13, 2]])
    return x, enc, added, ids


def _outputs(unet, encoders, tiny):
    x, enc, added, ids = _inputs(tiny)
    with torch.no_grad():
        out = unet(x, 10, encoder_hidden_states=enc, added_cond_kwargs=added).sample
        texts = [e(ids).last_hidden_state for e in encoders]
    return out, texts


def _check_formula(handle_model, handle_clip, tiny, fs, strength):
    base_u = {k: v.clone() for k, v in tiny.unet.state_dict().items()}
    base_e = [{k: v.clone() for k, v in e.state_dict().items()} for e in tiny.encoders]
    touched = 0
    with handle_model.materialized() as unet, handle_clip.materialized() as encoders:
        for (comp, module), f in fs.items():
            root, base = (unet, base_u) if comp == "unet" else (encoders[int(comp[-1]) - 1], base_e[int(comp[-1]) - 1])
            w = root.get_submodule(module).weight
            want = base[f"{module}.weight"] + strength * expected_delta(f, tuple(w.shape))
            torch.testing.assert_close(w, want, rtol=0, atol=1e-6)
            touched += 1
        changed = sum(not torch.equal(base_u[k], v) for k, v in unet.state_dict().items())
        assert changed == sum(1 for c, _ in fs if c == "unet")
        outputs = _outputs(unet, encoders, tiny)
    assert touched == len(fs)
    assert all(torch.equal(base_u[k], v) for k, v in tiny.unet.state_dict().items()), "base restored bit-exactly"
    return outputs


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_matches_formula_and_diffusers(tiny, layout, tmp_path):
    alpha = None if layout in ("peft", "diffusers-old") else 2.0
    fs = factors(tiny, alpha=alpha)
    path = save(write(fs, layout, tiny.family, tiny.unet), tmp_path / f"{layout}.safetensors")
    assert read_lora(path).layout == layout.replace("kohya-ldm", "kohya")
    model, clip = model_handles(tiny)
    base_out, base_texts = _outputs(tiny.unet, tiny.encoders, tiny)
    for strength in STRENGTHS:
        m2, c2 = apply_lora(model, clip, path, strength, strength)
        ours, ours_texts = _check_formula(m2, c2, tiny, fs, strength)
        assert not torch.allclose(ours, base_out) and not torch.allclose(ours_texts[0], base_texts[0])
        if (tiny.family, layout) not in DIFFUSERS_READS:
            continue
        pipe = tiny_pipeline(tiny, tmp_path)
        pipe.load_lora_weights(str(path))
        pipe.fuse_lora(lora_scale=strength)
        pipe.unload_lora_weights()
        encoders = (pipe.text_encoder,) + ((pipe.text_encoder_2,) if tiny.family == "sdxl" else ())
        ref, ref_texts = _outputs(pipe.unet, encoders, tiny)
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
        for a, b in zip(ours_texts, ref_texts):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family, layout", [("sd15", "kohya-ldm"), ("sd15", "comfyui"), ("sdxl", "comfyui")])
def test_layouts_diffusers_cannot_read(family, layout, tmp_path):
    """Where we beat diffusers 0.42: it refuses these files (listed in lcm_core/lora/README.md)."""
    assert (family, layout) not in DIFFUSERS_READS
    tiny = tiny_models(family)
    path = save(write(factors(tiny, alpha=2.0), layout, family, tiny.unet), tmp_path / f"{layout}.safetensors")
    with pytest.raises(Exception):
        tiny_pipeline(tiny, tmp_path).load_lora_weights(str(path))


@pytest.mark.parametrize("kind", ("locon", "loha", "lokr"))
@pytest.mark.parametrize("layout", ("kohya", "kohya-ldm"))
def test_lycoris_kinds_match_formula(tiny, kind, layout, tmp_path):
    if kind == "locon":
        fs = factors(tiny, "lora", unet_suffixes=CONV + ("proj_in",), te=False)
    else:
        fs = factors(tiny, kind, unet_suffixes=("to_q", "ff.net.2") + CONV)
    path = save(write(fs, layout, tiny.family, tiny.unet), tmp_path / "ly.safetensors")
    lora = read_lora(path)
    assert kind in lora.kinds
    model, clip = model_handles(tiny)
    for strength in STRENGTHS:
        m2, c2 = apply_lora(model, clip, path, strength, strength)
        _check_formula(m2, c2, tiny, fs, strength)
    if kind in ("loha", "lokr") and tiny.family == "sd15" and layout == "kohya":
        with pytest.raises(Exception):  # diffusers 0.42 has no LoHa/LoKr reader for SD UNets
            tiny_pipeline(tiny, tmp_path).load_lora_weights(str(path))
    if kind == "locon" and tiny.family == "sd15" and layout == "kohya":
        pipe = tiny_pipeline(tiny, tmp_path)
        pipe.load_lora_weights(str(path))
        pipe.fuse_lora(lora_scale=0.5)
        pipe.unload_lora_weights()
        m2, c2 = apply_lora(model, clip, path, 0.5, 0.5)
        with m2.materialized() as unet:
            ours, _ = _outputs(unet, (), tiny)
        ref, _ = _outputs(pipe.unet, (), tiny)
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


def test_tucker_locon_and_loha_match_their_formulas():
    from lcm_core.lora.adapters import LohaAdapter, LoraAdapter

    g = torch.Generator().manual_seed(3)
    up, down, mid = torch.randn(8, 2, 1, 1, generator=g), torch.randn(2, 6, 1, 1, generator=g), torch.randn(2, 2, 3, 3, generator=g)
    want = torch.einsum("oa,abhw,bi->oihw", up.flatten(1), mid, down.flatten(1)) * (4.0 / 2)
    torch.testing.assert_close(LoraAdapter(up, down, 4.0, mid).delta((8, 6, 3, 3)), want)
    t1, t2 = torch.randn(2, 2, 3, 3, generator=g), torch.randn(2, 2, 3, 3, generator=g)
    a1, b1, a2, b2 = (torch.randn(2, n, generator=g) for n in (8, 6, 8, 6))
    w1 = torch.einsum("ijkl,jr,ip->prkl", t1, b1, a1)
    w2 = torch.einsum("ijkl,jr,ip->prkl", t2, b2, a2)
    torch.testing.assert_close(LohaAdapter(a1, b1, a2, b2, 1.0, t1, t2).delta((8, 6, 3, 3)), 0.5 * w1 * w2)
