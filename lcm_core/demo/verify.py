"""Check PNGs a demo workflow wrote: `python -m lcm_core.demo.verify out/*.png`.

Each image's expected caption is the positive prompt of the LCM Sampler in the workflow
the PNG carries (its `prompt` chunk), unless `--caption` gives one. Prints what the
checker recovers from the pixels; exits 1 if any image does not match its caption.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from ..graph.formats import read_png_chunks
from .checker import check


def embedded_caption(path: Path) -> str:
    """The text of the node feeding the first LCM Sampler's `positive` input."""
    chunks = read_png_chunks(path)
    if "prompt" not in chunks:
        raise ValueError(f"{path}: no workflow embedded; pass --caption")
    prompt = json.loads(chunks["prompt"])
    for node in prompt.values():
        if node.get("class_type") == "LCMSampler":
            source = prompt[str(node["inputs"]["positive"][0])]
            return source["inputs"]["text"]
    raise ValueError(f"{path}: the embedded workflow has no LCM Sampler; pass --caption")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lcm_core.demo.verify", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--caption", help="the expected caption (default: read from each PNG's workflow)")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.images:
        try:
            caption = args.caption or embedded_caption(path)
            result = check(Image.open(path), caption)
        except (OSError, ValueError) as exc:
            print(f"{path}: ERROR {exc}")
            failed += 1
            continue
        wrong = [k for k, ok in result.correct.items() if not ok]
        verdict = "OK" if not wrong else "MISMATCH (" + ", ".join(wrong) + ")"
        print(f"{path}: {verdict}: expected '{caption}', found '{result.found.caption()}'")
        failed += bool(wrong)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
