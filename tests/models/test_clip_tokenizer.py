"""The shipped CLIP tokenizer gives CLIP's token ids, offline, with each family's padding.

Reference: a port of OpenAI CLIP's `SimpleTokenizer` (its BPE and vocabulary order, built
here from `merges.txt` alone), plus transformers' `CLIPTokenizer.from_pretrained` on the
shipped files (the path diffusers' pipelines take), plus ids of the real CLIP vocabulary.
transformers 5 has no slow (pure Python) `CLIPTokenizer` any more; `CLIPTokenizer` is the
tokenizers-backed class, so the port stands in for the slow one. The port skips CLIP's
`html.unescape` (transformers does not unescape either) and uses NFC for `ftfy.fix_text`.
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
import regex

from lcm_core.text.build_vocab import bytes_to_unicode
from lcm_core.text.tokenizer import DATA_DIR, clip_tokenizer, family_tokenizers

PROMPTS = [
    "a photo of a cat",
    "A Photo OF a CAT",
    "masterpiece, best quality, (1girl:1.2), [blurry], {detailed}, (((very detailed)))",
    "(embedding:my_style:0.8) \\(escaped\\) word:1.5",
    "café naïve résumé crème brûlée Ærøskøbing Straße",
    "emoji 🐱🚀👩‍👩‍👧 party 🎉✨",
    "日本語のテキスト and 中文 mixed with 한국어",
    "numbers 1234567890 3.14159 1e-5 #42 $100 50% 2024-01-01",
    "tabs\tand\nnewlines   and    spaces  ",
    "it's don't we're they've I'm you'll he'd IT'S",
    "punctuation!!! ??? ... --- ;;; :: ''' \"quoted\" <<>> @@ ^^ ~~ \\ / |",
    "Ελλάδα İstanbul ǅemal",
    "e\u0301 decomposed accent vs é",
    "<|startoftext|> special tokens <|endoftext|>",
    "",
    "a very long prompt about a castle on a hill at sunset " * 12,
]


class ReferenceCLIP:
    """OpenAI CLIP's `SimpleTokenizer` algorithm (BPE over byte symbols)."""

    def __init__(self, merges_path):
        merges = merges_path.read_text(encoding="utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]"""
                                 r"""|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

    def bpe(self, token: str) -> list[str]:
        if token in ("<|startoftext|>", "<|endoftext|>"):
            return [token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return list(word)

    def encode(self, text: str) -> list[int]:
        text = regex.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().lower()
        ids = []
        for token in self.pat.findall(text):
            if token not in ("<|startoftext|>", "<|endoftext|>"):
                token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token))
        return ids


@pytest.fixture(scope="module")
def reference():
    return ReferenceCLIP(DATA_DIR / "merges.txt")


@pytest.fixture(scope="module")
def from_files(tmp_path_factory):
    """transformers' CLIPTokenizer loaded from a folder holding the shipped files."""
    from transformers import CLIPTokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(DATA_DIR / name, folder / name)
    return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


def test_vocabulary_is_clips():
    vocab = json.loads((DATA_DIR / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 49408
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert vocab["!"] == 0 and vocab["!</w>"] == 256
    assert sorted(vocab.values()) == list(range(49408))


@pytest.mark.parametrize("text", PROMPTS)
def test_ids_match_reference_and_transformers(text, reference, from_files):
    tok = clip_tokenizer()
    ids = tok(text).input_ids
    assert ids == [49406] + reference.encode(text) + [49407]
    assert ids == from_files(text).input_ids


def test_final_sigma_lowercases_like_transformers(reference, from_files):
    """The one known divergence: Python's `str.lower` (CLIP's original, and transformers'
    old slow tokenizer) writes a word-final capital sigma as ς; the tokenizers library
    (transformers 5, hence diffusers) writes σ. We follow transformers."""
    ids = clip_tokenizer()("ΟΔΟΣ").input_ids
    assert ids == from_files("ΟΔΟΣ").input_ids
    assert ids[1:-1] == reference.encode("οδοσ") != reference.encode("ΟΔΟΣ")


@pytest.mark.parametrize("text", PROMPTS[:3] + PROMPTS[-1:])
def test_truncation_keeps_75_tokens(text, reference):
    ids = clip_tokenizer()(text, padding="max_length", max_length=77, truncation=True).input_ids
    body = reference.encode(text)[:75]
    assert ids[:len(body) + 2] == [49406] + body + [49407]
    assert len(ids) == 77


@pytest.mark.parametrize("text,words", [
    ("a photo of a cat", [320, 1125, 539, 320, 2368]),
    ("a photo of a dog", [320, 1125, 539, 320, 1929]),
    ("an astronaut riding a horse", [550, 18376, 6765, 320, 4558]),
    ("masterpiece, 1", [12066, 267, 272]),
])
def test_known_clip_ids(text, words):
    assert clip_tokenizer()(text).input_ids == [49406] + words + [49407]


@pytest.mark.parametrize("family,pads", [("sd15", [49407]), ("sd2", [0]), ("sd2-v", [0]), ("sdxl", [49407, 0])])
def test_family_padding(family, pads):
    tokenizers = family_tokenizers(family)
    assert [t.pad_token_id for t in tokenizers] == pads
    for tok, pad in zip(tokenizers, pads):
        ids = tok("a cat", padding="max_length", max_length=77).input_ids
        assert ids[:4] == [49406, 320, 2368, 49407] and ids[4:] == [pad] * 73
        assert tok.model_max_length == 77


def test_tokenizer_is_cached_and_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert clip_tokenizer("zero") is clip_tokenizer("zero")
    assert clip_tokenizer("eos") is not clip_tokenizer("zero")
    with pytest.raises(ValueError):
        clip_tokenizer("bos")
