"""The shipped shapes demo family (models/): its files, its loading through our loader, its
text path, and the demo workflows run headless the way the README's main command runs
them, with the pixels checked against the prompt."""

from __future__ import annotations

import json

import torch

from lcm_core import paths
from lcm_core.demo import family, verify
from lcm_core.demo.shapes import COLOURS, SHAPES, Attributes
from support.host import PACK_ROOT

SHIPPED = paths.PACK_MODELS_DIR
TEACHER = SHIPPED / "diffusers" / family.TEACHER_NAME
CAPTIONS = [Attributes(shape, colour, background, "top left", striped).caption()
            for shape, colour, background, striped in
            [("circle", "red", "blue", False), ("star", "orange", "white", True), ("triangle", "black", "yellow", False),
             ("square", "purple", "green", True)]]


def test_every_caption_word_is_one_token():
    tokenizer = family.build_tokenizer()
    for word in family.caption_words():
        assert len(tokenizer(word).input_ids) == 3, word
    assert set(COLOURS) | set(SHAPES) <= set(family.caption_words())
    assert tokenizer.convert_ids_to_tokens(tokenizer.pad_token_id) == "<|endoftext|>"
    assert tokenizer.eos_token_id == len(tokenizer) - 1


def test_shipped_files_are_complete_and_within_the_size_budget():
    from transformers import CLIPTokenizer

    assert (TEACHER / "model_index.json").is_file()
    for name in (family.LCM_LORA_NAME, family.STRIPED_LORA_NAME):
        assert (SHIPPED / "loras" / name).is_file()
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= 40 * 2 ** 20, f"{total / 2 ** 20:.1f} MiB shipped"
    shipped = CLIPTokenizer.from_pretrained(TEACHER / "tokenizer", local_files_only=True)
    built = family.build_tokenizer()
    for caption in CAPTIONS + ["", "an unknown word"]:
        assert shipped(caption).input_ids == built(caption).input_ids
    assert shipped.pad_token_id == built.pad_token_id


def test_shipped_family_loads_as_sd15_with_its_own_latent_scale(one_thread):
    from lcm_core.lora.apply import apply_lora
    from lcm_core.models.load import load_checkpoint
    from lcm_core.text.encode import encode_text
    from lcm_core.training.dataset import encode_prompts

    model, clip, vae = load_checkpoint(TEACHER, dtype="fp32", device="cpu")
    assert (model.family, model.prediction_type, model.method) == ("sd15", "epsilon", "none")
    assert model.extra["scaling_factor"] == vae.scaling_factor != 0.18215
    for caption in CAPTIONS:  # the nodes' text path is the one the teacher was trained on
        ours = encode_text(clip, caption).embeds
        trained = encode_prompts(clip.tokenizers, clip.text_encoders, [caption], clip.family)["embeds"]
        assert torch.equal(ours.float(), trained)
    lcm, _ = apply_lora(model, None, SHIPPED / "loras" / family.LCM_LORA_NAME, 1.0, 0.0)
    assert lcm.method == "lcm-lora"
    styled, _ = apply_lora(lcm, None, SHIPPED / "loras" / family.STRIPED_LORA_NAME, 1.0, 0.0, kind="style")
    assert styled.method == "lcm-lora" and len(styled.patches) > len(lcm.patches)


def _run_demo(name: str, tmp_path, monkeypatch) -> list:
    """`lcm-run workflows/<name>.json` with no models dir (the shipped models); the PNGs."""
    from lcm_core.graph import cli

    monkeypatch.delenv("LCM_MODELS_DIR", raising=False)
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    out, report = tmp_path / "out", tmp_path / "report.json"
    try:
        code = cli.main([str(PACK_ROOT / "workflows" / f"{name}.json"), "--output-dir", str(out),
                         "--device", "cpu", "--report", str(report)])
    finally:
        paths.configure(None)
    body = json.loads(report.read_text())
    assert code == 0, body["error"] or body["node_errors"]
    return sorted(out.glob("*.png"))


def test_main_demo_workflow_draws_its_prompt(tmp_path, monkeypatch, one_thread, capsys):
    """The README's main command: the PNG matches its prompt in every attribute."""
    (png,) = _run_demo("demo_shapes", tmp_path, monkeypatch)
    capsys.readouterr()
    assert verify.main([str(png)]) == 0, capsys.readouterr().out
    prompt = json.loads((PACK_ROOT / "workflows" / "api" / "demo_shapes.json").read_text())
    assert verify.embedded_caption(png) == prompt["3"]["inputs"]["text"]


def test_verify_reports_a_mismatch(tmp_path, capsys):
    from lcm_core.demo.shapes import render
    import numpy as np

    image = render(Attributes("circle", "red", "blue", "top left"), np.random.default_rng(0))
    image.save(tmp_path / "circle.png")
    assert verify.main([str(tmp_path / "circle.png"), "--caption", CAPTIONS[0]]) == 0
    assert verify.main([str(tmp_path / "circle.png"), "--caption", CAPTIONS[2]]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH (shape, colour, background)" in out
    assert verify.main([str(tmp_path / "circle.png")]) == 1
    assert "no workflow embedded" in capsys.readouterr().out
