"""Rebuild `data/vocab.json` and `data/merges.txt` from OpenAI CLIP's BPE merges file.

The merges ship inside the `open_clip_torch` wheel as `open_clip/bpe_simple_vocab_16e6.txt.gz`.
Fetch the wheel without installing it, then run this module:

    pip download --no-deps -d /tmp/oc open_clip_torch
    python -m lcm_core.text.build_vocab /tmp/oc/open_clip_torch-*.whl

The vocabulary is built exactly as CLIP's `SimpleTokenizer` builds it: the 256 byte
symbols, the same with `</w>`, one token per merge (the first 49152-256-2 merges), then
`<|startoftext|>` (49406) and `<|endoftext|>` (49407).
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from functools import lru_cache
from pathlib import Path

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
DATA_DIR = Path(__file__).resolve().parent / "data"
N_MERGES = 49152 - 256 - 2


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def read_merges(source: Path) -> list[str]:
    """The merge lines used by CLIP, from the wheel or from the `.txt.gz` itself."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            raw = wheel.read(BPE_MEMBER)
    else:
        raw = source.read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    return lines[1 : N_MERGES + 1]


def build_vocab(merges: list[str]) -> dict[str, int]:
    """Token -> id, in CLIP's order."""
    byte_symbols = list(bytes_to_unicode().values())
    tokens = byte_symbols + [s + "</w>" for s in byte_symbols]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}


def write(source: Path, out_dir: Path = DATA_DIR) -> None:
    """Write `vocab.json` and `merges.txt` (transformers' `CLIPTokenizer` file formats)."""
    merges = read_merges(source)
    vocab = build_vocab(merges)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write(Path(sys.argv[1]))
