"""`embedding:name` textual inversions, against diffusers' `load_textual_inversion`."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors.torch import save_file

from lcm_core import paths
from lcm_core.errors import InputError, PathEscapeError
from lcm_core.models.handles import LCMClip
from lcm_core.text.embeddings import load_embedding
from lcm_core.text.encode import encode_text
from support.tiny_text import tiny_clip_g, tiny_clip_l, tiny_tokenizer


@pytest.fixture
def embeddings_dir(tmp_path):
    folder = tmp_path / "embeddings"
    (folder / "styles").mkdir(parents=True)
    paths.configure(paths.LocalFolders(tmp_path))
    yield folder
    paths.configure(None)


def _sd15_reference(tok, enc, vectors, prompt):
    """diffusers' multi-vector textual inversion on copies of the tokenizer and encoder."""
    pipe = StableDiffusionPipeline(vae=None, text_encoder=copy.deepcopy(enc), tokenizer=copy.deepcopy(tok), unet=None,
                                   scheduler=None, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.load_textual_inversion({"emb_params": vectors}, token="<style>", tokenizer=pipe.tokenizer,
                                text_encoder=pipe.text_encoder)
    return pipe.encode_prompt(prompt, "cpu", 1, False)[0]


def test_sd15_embedding_equals_diffusers_textual_inversion(embeddings_dir):
    tok, enc = tiny_tokenizer(), tiny_clip_l()
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(7))
    save_file({"emb_params": vectors}, str(embeddings_dir / "styles" / "mystyle.safetensors"))
    clip = LCMClip((tok,), (enc,), "sd15")
    ref = _sd15_reference(tok, enc, vectors, "a <style> cat")
    cond = encode_text(clip, "a embedding:mystyle cat")
    assert (cond.embeds - ref).abs().max() <= 1e-6
    assert enc.get_input_embeddings().weight.shape[0] == len(tok)  # encoder left as it was
    # weighted embedding: its two positions follow the weighting formula like tokens do
    weighted = encode_text(clip, "a (embedding:mystyle:1.4) cat").embeds
    assert (weighted != cond.embeds).any(-1)[0].nonzero().flatten().tolist() == [2, 3]


def test_sdxl_embedding_takes_each_encoders_key(embeddings_dir):
    toks, encs = (tiny_tokenizer("eos"), tiny_tokenizer("zero")), (tiny_clip_l(), tiny_clip_g())
    g = torch.Generator().manual_seed(3)
    l_vec, g_vec = torch.randn(1, 32, generator=g), torch.randn(1, 48, generator=g)
    save_file({"clip_g": g_vec, "clip_l": l_vec}, str(embeddings_dir / "xl.safetensors"))
    pipe = StableDiffusionXLPipeline(vae=None, text_encoder=copy.deepcopy(encs[0]), text_encoder_2=copy.deepcopy(encs[1]),
                                     tokenizer=copy.deepcopy(toks[0]), tokenizer_2=copy.deepcopy(toks[1]),
                                     unet=None, scheduler=None)
    pipe.load_textual_inversion(l_vec, token="<xl>", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(g_vec, token="<xl>", text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
    ref, _, ref_pooled, _ = pipe.encode_prompt("a <xl> dog", device="cpu", num_images_per_prompt=1,
                                               do_classifier_free_guidance=False)
    cond = encode_text(LCMClip(toks, encs, "sdxl"), "a embedding:xl dog")
    assert (cond.embeds - ref).abs().max() <= 1e-6
    assert (cond.pooled - ref_pooled).abs().max() <= 1e-6


def test_missing_embedding_is_dropped_with_warning(embeddings_dir, caplog):
    clip = LCMClip((tiny_tokenizer(),), (tiny_clip_l(),), "sd15")
    with caplog.at_level(logging.WARNING):
        cond = encode_text(clip, "a embedding:nothere, cat")
    assert "embedding:nothere, does not exist" in caplog.text
    assert torch.equal(cond.embeds, encode_text(clip, "a , cat").embeds)


def test_pickled_embedding_is_refused(embeddings_dir):
    (embeddings_dir / "old.pt").write_bytes(b"not read")
    clip = LCMClip((tiny_tokenizer(),), (tiny_clip_l(),), "sd15")
    with pytest.raises(InputError, match="pickle"):
        encode_text(clip, "embedding:old cat")


def test_tensor_choice_follows_comfyui(tmp_path):
    a, b, c = torch.ones(1, 4), torch.full((2, 4), 2.0), torch.full((4,), 3.0)
    save_file({"bundle_emb.x.string_to_param.*": b, "other": a}, str(tmp_path / "bundle.safetensors"))
    save_file({"clip_l": a, "clip_g": b}, str(tmp_path / "keyed.safetensors"))
    save_file({"emb_params": c}, str(tmp_path / "single.safetensors"))
    assert torch.equal(load_embedding(tmp_path / "bundle.safetensors", "clip_l"), b)
    assert torch.equal(load_embedding(tmp_path / "keyed.safetensors", "clip_g"), b)
    assert torch.equal(load_embedding(tmp_path / "single.safetensors", "clip_l"), c.unsqueeze(0))


@pytest.mark.parametrize("ref", ["embedding:../secret", "embedding:link"])
def test_embedding_names_stay_inside_the_folder(embeddings_dir, tmp_path, ref):
    save_file({"x": torch.ones(1, 32)}, str(tmp_path / "secret.safetensors"))
    (embeddings_dir / "link.safetensors").symlink_to(tmp_path / "secret.safetensors")
    clip = LCMClip((tiny_tokenizer(),), (tiny_clip_l(),), "sd15")
    with pytest.raises(PathEscapeError):
        encode_text(clip, f"a {ref} cat")
