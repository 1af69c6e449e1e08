"""Time and peak memory of `load_checkpoint` on one file, cold (first load) and warm (cache hit).

    python benchmarks/load_checkpoint.py <checkpoint file or diffusers folder> [--dtype fp16] [--device cpu]

Prints one markdown table row. Peak memory is the process's maximum resident set size,
which includes pages of the file mapped while reading. Results are in
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from lcm_core.models.load import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"])
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    model, clip, vae = load_checkpoint(args.path, dtype=args.dtype, device=args.device)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    load_checkpoint(args.path, dtype=args.dtype, device=args.device)
    warm = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    size_gb = args.path.stat().st_size / 2**30 if args.path.is_file() else float("nan")
    print("| file | GB on disk | family | dtype | cold load s | cache hit ms | peak RSS GB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.path.name} | {size_gb:.2f} | {model.family} | {model.extra['dtype']} | {cold:.1f} | "
          f"{warm * 1000:.2f} | {peak_gb:.2f} |")


if __name__ == "__main__":
    main()
