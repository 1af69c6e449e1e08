"""`encode_text` against diffusers' `encode_prompt` and ComfyUI's chunking/weighting rules."""

from __future__ import annotations

import logging

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from lcm_core import paths
from lcm_core.errors import InputError, ModelFormatError
from lcm_core.models.handles import LCMClip
from lcm_core.text.encode import encode_text, tokenize_with_weights
from support.tiny_text import tiny_clip_g, tiny_clip_l, tiny_tokenizer, tiny_vocab

PROMPTS = ["a cat", "", "A Red dog, sitting; on a (mat)!", "x" * 40 + " cat dog red " * 5]


@pytest.fixture(scope="module")
def sd15():
    tok, enc = tiny_tokenizer("eos"), tiny_clip_l()
    pipe = StableDiffusionPipeline(vae=None, text_encoder=enc, tokenizer=tok, unet=None, scheduler=None,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return LCMClip(tokenizers=(tok,), text_encoders=(enc,), family="sd15"), pipe


@pytest.fixture(scope="module")
def sdxl():
    toks, encs = (tiny_tokenizer("eos"), tiny_tokenizer("zero")), (tiny_clip_l(), tiny_clip_g())
    pipe = StableDiffusionXLPipeline(vae=None, text_encoder=encs[0], text_encoder_2=encs[1], tokenizer=toks[0],
                                     tokenizer_2=toks[1], unet=None, scheduler=None)
    return LCMClip(tokenizers=toks, text_encoders=encs, family="sdxl"), pipe


def _ids(tokenizer, text):
    return tokenizer(text, verbose=False)["input_ids"][1:-1]


def _run(encoder, rows, penultimate):
    with torch.no_grad():
        out = encoder(torch.tensor(rows), output_hidden_states=True)
    return out.hidden_states[-2] if penultimate else out.last_hidden_state


@pytest.mark.parametrize("prompt", PROMPTS)
def test_sd15_equals_diffusers_encode_prompt(sd15, prompt):
    clip, pipe = sd15
    if "(" in prompt:  # ComfyUI syntax: compare with the same text escaped
        prompt_for_us = prompt.replace("(", "\\(").replace(")", "\\)")
    else:
        prompt_for_us = prompt
    ref, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
    cond = encode_text(clip, prompt_for_us)
    assert cond.family == "sd15" and cond.pooled is None and cond.embeds.dtype == torch.float32
    assert cond.embeds.shape == ref.shape == (1, 77, 32)
    assert (cond.embeds - ref).abs().max() <= 1e-6


@pytest.mark.parametrize("family", ["sd2", "sd2-v"])
def test_sd2_equals_diffusers_encode_prompt(family):
    tok, enc = tiny_tokenizer("zero"), tiny_clip_l(hidden=40, seed=3)
    pipe = StableDiffusionPipeline(vae=None, text_encoder=enc, tokenizer=tok, unet=None, scheduler=None,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    cond = encode_text(LCMClip(tokenizers=(tok,), text_encoders=(enc,), family=family), "a red dog")
    ref, _ = pipe.encode_prompt("a red dog", "cpu", 1, False)
    assert cond.family == family and cond.pooled is None
    assert (cond.embeds - ref).abs().max() <= 1e-6


@pytest.mark.parametrize("prompt", [p for p in PROMPTS if "(" not in p])
def test_sdxl_equals_diffusers_encode_prompt(sdxl, prompt):
    clip, pipe = sdxl
    ref, _, ref_pooled, _ = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                               do_classifier_free_guidance=False)
    cond = encode_text(clip, prompt)
    assert cond.family == "sdxl"
    assert cond.embeds.shape == ref.shape == (1, 77, 32 + 48)
    assert cond.pooled.shape == ref_pooled.shape == (1, 40)
    assert (cond.embeds - ref).abs().max() <= 1e-6
    assert (cond.pooled - ref_pooled).abs().max() <= 1e-6


def test_long_prompt_is_chunked_into_77_token_pieces(sdxl):
    clip, pipe = sdxl
    prompt = "x" * 200  # one 200-token word: split into 75 + 75 + 50
    ids = _ids(clip.tokenizers[0], prompt)
    assert len(ids) == 200
    cond = encode_text(clip, prompt)
    assert cond.embeds.shape == (1, 3 * 77, 80)
    for k, tokenizer, encoder, cols in [(0, clip.tokenizers[0], clip.text_encoders[0], slice(0, 32)),
                                        (1, clip.tokenizers[1], clip.text_encoders[1], slice(32, 80))]:
        bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        rows = [[bos] + ids[i:i + 75] + [eos] for i in range(0, 200, 75)]
        rows = [r + [pad] * (77 - len(r)) for r in rows]
        ref = _run(encoder, rows, penultimate=True).reshape(1, -1, cols.stop - cols.start)
        assert (cond.embeds[..., cols] - ref).abs().max() <= 1e-6
    # the first chunk is what diffusers sees after truncation; pooled comes from it
    ref, _, ref_pooled, _ = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                               do_classifier_free_guidance=False)
    assert (cond.embeds[:, :77] - ref).abs().max() <= 1e-6
    assert (cond.pooled - ref_pooled).abs().max() <= 1e-6


def test_short_segments_move_whole_to_the_next_chunk():
    tok = tiny_tokenizer("eos")
    bos, eos = tok.bos_token_id, tok.eos_token_id
    long_ids, short_ids = _ids(tok, "x" * 70), _ids(tok, "cat dog red cat dog red cat")
    assert (len(long_ids), len(short_ids)) == (70, 7)
    chunks = tokenize_with_weights(tok, "x" * 70 + " (cat dog red cat dog red cat:1.2)")
    assert [len(c) for c in chunks] == [77, 77]
    assert [t for t, _ in chunks[0]] == [bos] + long_ids + [eos] * 6  # EOS, then EOS padding
    assert [t for t, _ in chunks[1][:9]] == [bos] + short_ids + [eos]
    assert [w for _, w in chunks[1][1:8]] == [1.2] * 7
    assert {w for _, w in chunks[0]} == {1.0}
    # 8 tokens or more: the segment is split to fill the chunk
    chunks = tokenize_with_weights(tok, "x" * 72 + " (" + "y" * 8 + ":1.2)")
    assert [t for t, _ in chunks[0][73:]] == _ids(tok, "y" * 8)[:3] + [eos]
    assert [t for t, _ in chunks[1][1:7]] == _ids(tok, "y" * 8)[3:] + [eos]


def test_unweighted_prompts_use_no_weights(sd15):
    clip, _ = sd15
    assert (encode_text(clip, "a (cat:1.0) dog").embeds == encode_text(clip, "a cat dog").embeds).all()


def _empty_row(tokenizer):
    """ComfyUI's `gen_empty_tokens`: start, end, then the model's pad token."""
    pad = {"<|endoftext|>": tokenizer.eos_token_id, "!": tiny_vocab()[0]["!"]}[tokenizer.pad_token]
    return [tokenizer.bos_token_id, tokenizer.eos_token_id] + [pad] * 75


def _formula(encoder, tokenizer, text, penultimate):
    """ComfyUI's weighting, by hand: z = (z - z_empty) * w + z_empty where w != 1."""
    chunk = tokenize_with_weights(tokenizer, text)[0]
    z, z_empty = _run(encoder, [[t for t, _ in chunk], _empty_row(tokenizer)], penultimate)
    out = z.clone()
    for j, (_, w) in enumerate(chunk):
        if w != 1.0:
            out[j] = (z[j] - z_empty[j]) * w + z_empty[j]
    return out.unsqueeze(0), z.unsqueeze(0)


@pytest.mark.parametrize("text,weight", [("a (cat:1.5) dog", 1.5), ("a ((cat)) dog", 1.21), ("a (cat:0) dog", 0.0)])
def test_weight_changes_only_the_weighted_tokens_by_comfyui_formula(sd15, text, weight):
    clip, _ = sd15
    tok, enc = clip.tokenizers[0], clip.text_encoders[0]
    cond = encode_text(clip, text)
    ref, plain = _formula(enc, tok, text, penultimate=False)
    assert (cond.embeds - ref).abs().max() <= 1e-6
    assert torch.equal(plain, encode_text(clip, "a cat dog").embeds)
    changed = (cond.embeds != plain).any(-1)[0].nonzero().flatten().tolist()
    assert changed == [2]  # BOS, "a", "cat": only the cat token
    if weight == 0.0:
        empty = _run(enc, [_empty_row(tok)], penultimate=False)[0]
        assert (cond.embeds[0, 2] - empty[2]).abs().max() <= 1e-6


def test_sdxl_weights_each_encoder_against_its_own_empty_prompt(sdxl):
    clip, pipe = sdxl
    cond = encode_text(clip, "a (red dog:1.3), cat")
    ref_l, _ = _formula(clip.text_encoders[0], clip.tokenizers[0], "a (red dog:1.3), cat", penultimate=True)
    ref_g, _ = _formula(clip.text_encoders[1], clip.tokenizers[1], "a (red dog:1.3), cat", penultimate=True)
    assert (cond.embeds - torch.cat([ref_l, ref_g], -1)).abs().max() <= 1e-6
    _, _, ref_pooled, _ = pipe.encode_prompt("a red dog, cat", device="cpu", num_images_per_prompt=1,
                                             do_classifier_free_guidance=False)
    assert (cond.pooled - ref_pooled).abs().max() <= 1e-6  # pooled is never weighted


def test_empty_prompt(sdxl):
    clip, _ = sdxl
    cond = encode_text(clip, "")
    assert cond.embeds.shape == (1, 77, 80) and cond.pooled.shape == (1, 40)
    assert torch.isfinite(cond.embeds).all() and cond.text == ""


def test_patched_encoders_are_used():
    tok = tiny_tokenizer()
    base, patched = tiny_clip_l(seed=0), tiny_clip_l(seed=5)

    class PatchedClip(LCMClip):
        def materialized(self):
            import contextlib
            return contextlib.nullcontext((patched,))

    cond = encode_text(PatchedClip(tokenizers=(tok,), text_encoders=(base,), family="sd15"), "a cat")
    assert torch.equal(cond.embeds, encode_text(LCMClip((tok,), (patched,), "sd15"), "a cat").embeds)


def test_low_precision_encoder_gives_float32():
    tok, enc = tiny_tokenizer(), tiny_clip_l().to(torch.bfloat16)
    assert encode_text(LCMClip((tok,), (enc,), "sd15"), "(a cat:1.2)").embeds.dtype == torch.float32


@pytest.mark.parametrize("text", ["(cat:inf)", "(cat:nan)"])
def test_non_finite_weights_are_refused(sd15, text):
    with pytest.raises(InputError, match="finite"):
        encode_text(sd15[0], text)


def test_encoder_count_must_match_family(sd15):
    clip, _ = sd15
    with pytest.raises(ModelFormatError, match="sdxl needs 2"):
        encode_text(clip.replace(family="sdxl"), "a cat")
