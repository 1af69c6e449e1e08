"""Handles stay immutable: patches stack, un-stack and never leak into the base."""

from __future__ import annotations

import threading

import pytest
import torch

from lcm_core.errors import LoraError
from lcm_core.lora import apply_lora
from lcm_core.lora.patching import patched_module
from support.lora_files import expected_delta, factors, model_handles, save, tiny_models, write


@pytest.fixture(scope="module")
def tiny():
    return tiny_models("sd15")


def _files(tiny, tmp_path):
    a = factors(tiny, alpha=2.0, seed=1)
    b = factors(tiny, alpha=4.0, seed=2, unet_suffixes=("to_q", "to_v", "ff.net.2"))
    pa = save(write(a, "kohya", "sd15", tiny.unet), tmp_path / "style_a.safetensors")
    pb = save(write(b, "peft", "sd15", tiny.unet), tmp_path / "style_b.safetensors")
    return a, b, pa, pb


def _run(model, x=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=g)
    enc = torch.randn(1, 5, 32, generator=g)
    with model.materialized() as unet, torch.no_grad():
        return unet(x, 5, encoder_hidden_states=enc).sample


def test_stacking_sums_deltas_and_dropping_one_restores_the_other(tiny, tmp_path):
    a, b, pa, pb = _files(tiny, tmp_path)
    model, clip = model_handles(tiny)
    base = {k: v.clone() for k, v in tiny.unet.state_dict().items()}
    ma, _ = apply_lora(model, None, pa, 0.8, 0.0)
    mab, _ = apply_lora(ma, None, pb, -0.5, 0.0)
    mb, _ = apply_lora(model, None, pb, -0.5, 0.0)
    assert len(mab.patches) == len(ma.patches) + len(mb.patches)
    with mab.materialized() as unet:
        for module in {m for (c, m) in a if c == "unet"} | {m for (c, m) in b if c == "unet"}:
            w = unet.get_submodule(module).weight
            want = base[f"{module}.weight"].clone()
            if ("unet", module) in a:
                want += 0.8 * expected_delta(a[("unet", module)], tuple(w.shape))
            if ("unet", module) in b:
                want += -0.5 * expected_delta(b[("unet", module)], tuple(w.shape))
            torch.testing.assert_close(w, want, rtol=0, atol=1e-6)
    # Dropping B (using the handle before it) gives A's result exactly, and vice versa.
    alone_a = _run(ma)
    _run(mab)
    assert torch.equal(_run(ma), alone_a)
    alone_b = _run(mb)
    _run(mab)
    assert torch.equal(_run(mb), alone_b)


def test_plain_branch_is_bit_identical_after_a_lora_branch_ran(tiny, tmp_path):
    _, _, pa, _ = _files(tiny, tmp_path)
    model, clip = model_handles(tiny)
    before = _run(model)
    with torch.no_grad():
        text_before = tiny.encoders[0](torch.tensor([[0, 4, 2]])).last_hidden_state
    lora_model, lora_clip = apply_lora(model, clip, pa, 1.0, 1.0)
    patched = _run(lora_model)
    with lora_clip.materialized() as (enc,), torch.no_grad():
        text_patched = enc(torch.tensor([[0, 4, 2]])).last_hidden_state
    assert not torch.allclose(patched, before) and not torch.allclose(text_patched, text_before)
    assert torch.equal(_run(model), before)
    with torch.no_grad():
        assert torch.equal(tiny.encoders[0](torch.tensor([[0, 4, 2]])).last_hidden_state, text_before)
    assert model.patches == () and clip.patches == ()


def test_weights_restored_even_when_the_block_raises(tiny, tmp_path):
    _, _, pa, _ = _files(tiny, tmp_path)
    model, _ = model_handles(tiny)
    originals = {n: (p.data_ptr(), p.detach().clone()) for n, p in tiny.unet.named_parameters()}
    lora_model, _ = apply_lora(model, None, pa, 1.0, 0.0)
    with pytest.raises(RuntimeError), lora_model.materialized():
        raise RuntimeError("sampling failed")
    for n, p in tiny.unet.named_parameters():
        assert p.data_ptr() == originals[n][0] and torch.equal(p, originals[n][1]), n


def test_nested_materialisation_of_one_base_is_refused(tiny, tmp_path):
    _, _, pa, pb = _files(tiny, tmp_path)
    model, _ = model_handles(tiny)
    ma, _ = apply_lora(model, None, pa, 1.0, 0.0)
    mb, _ = apply_lora(model, None, pb, 1.0, 0.0)
    with ma.materialized():
        with pytest.raises(LoraError):
            with mb.materialized():
                pass


def test_two_threads_never_interleave(tiny, tmp_path):
    _, _, pa, pb = _files(tiny, tmp_path)
    model, _ = model_handles(tiny)
    ma, _ = apply_lora(model, None, pa, 1.0, 0.0)
    mb, _ = apply_lora(model, None, pb, 1.0, 0.0)
    want = {"a": _run(ma), "b": _run(mb)}
    got: dict[str, list] = {"a": [], "b": []}

    def worker(name, handle):
        for _ in range(3):
            got[name].append(_run(handle))

    threads = [threading.Thread(target=worker, args=(n, h)) for n, h in (("a", ma), ("b", mb))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(o, want[n]) for n in got for o in got[n])


def test_zero_clip_strength_adds_no_clip_patches_and_negative_is_allowed(tiny, tmp_path):
    _, _, pa, _ = _files(tiny, tmp_path)
    model, clip = model_handles(tiny)
    m2, c2 = apply_lora(model, clip, pa, -1.5, 0.0)
    assert c2.patches == () and all(p.strength == -1.5 for p in m2.patches)
    m3, _ = apply_lora(model, None, pa, 0.0, 0.0)
    assert m3.patches == ()


def test_patched_module_is_usable_without_handles(tiny, tmp_path):
    a, _, pa, _ = _files(tiny, tmp_path)
    model, _ = model_handles(tiny)
    m2, _ = apply_lora(model, None, pa, 1.0, 0.0)
    module = next(m for c, m in a if c == "unet")
    w0 = tiny.unet.get_submodule(module).weight.detach().clone()
    with patched_module(tiny.unet, m2.patches) as unet:
        assert not torch.equal(unet.get_submodule(module).weight, w0)
    assert torch.equal(tiny.unet.get_submodule(module).weight, w0)


def test_fp16_base_is_merged_in_fp32_and_cast(tmp_path):
    tiny = tiny_models("sd15")
    tiny.unet.to(torch.float16)
    fs = factors(tiny, alpha=2.0, te=False)
    path = save(write(fs, "kohya", "sd15", tiny.unet), tmp_path / "h.safetensors")
    model, _ = model_handles(tiny)
    m2, _ = apply_lora(model, None, path, 0.7, 0.0)
    (comp, module), f = next(iter(fs.items()))
    w0 = tiny.unet.get_submodule(module).weight.detach().clone()
    with m2.materialized() as unet:
        w = unet.get_submodule(module).weight
        assert w.dtype == torch.float16
        assert torch.equal(w, (w0.float() + 0.7 * expected_delta(f, tuple(w.shape))).half())
    assert torch.equal(tiny.unet.get_submodule(module).weight, w0)
