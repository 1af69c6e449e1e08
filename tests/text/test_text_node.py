"""LCM Text Encode through the stand-in ComfyUI host, as ComfyUI would call it."""

from __future__ import annotations

import importlib

import torch

from lcm_core.models.handles import LCMClip
from lcm_core.text.encode import encode_text
from support.host import comfy_host
from support.tiny_text import tiny_clip_l, tiny_tokenizer


def test_node_declares_comfyui_text_widget(tmp_path):
    with comfy_host(tmp_path) as (pack, _record, _dirs):
        cls = pack.NODE_CLASS_MAPPINGS["LCMTextEncode"]
        assert pack.NODE_DISPLAY_NAME_MAPPINGS["LCMTextEncode"] == "LCM Text Encode"
        required = cls.INPUT_TYPES()["required"]
        assert list(required) == ["clip", "text"]
        assert required["clip"][0] == "LCM_CLIP"
        kind, options = required["text"]
        assert kind == "STRING" and options["multiline"] and options["dynamicPrompts"]
        assert cls.RETURN_TYPES == ("LCM_CONDITIONING",)
        assert "(word:1.2)" in cls.DESCRIPTION or "(words:1.3)" in cls.DESCRIPTION


def test_node_output_equals_engine_call(tmp_path):
    tok, enc = tiny_tokenizer(), tiny_clip_l()
    expected = encode_text(LCMClip((tok,), (enc,), "sd15"), "a (cat:1.3), dog")
    with comfy_host(tmp_path) as (pack, _record, _dirs):
        handles = importlib.import_module(f"{pack.__name__}.lcm_core.models.handles")
        node = pack.NODE_CLASS_MAPPINGS["LCMTextEncode"]()
        (cond,) = getattr(node, node.FUNCTION)(clip=handles.LCMClip((tok,), (enc,), "sd15"), text="a (cat:1.3), dog")
    assert cond.family == "sd15" and cond.text == "a (cat:1.3), dog"
    assert torch.equal(cond.embeds, expected.embeds)
