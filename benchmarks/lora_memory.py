"""Peak memory of chained LoRA handles on one base model.

Builds an SD1.5-structured UNet (quarter width, random weights), writes N random LoRAs
of the LCM-LoRA's target modules, chains N `apply_lora` handles on the one base, keeps
them all alive, materialises the last one and runs one UNet forward. Each case runs in
its own process and reports its peak RSS, so cases do not share a high-water mark.

    PYTHONPATH=. python benchmarks/lora_memory.py            # table for 0, 1 and 20 handles
    PYTHONPATH=. python benchmarks/lora_memory.py --child 20 # one case (used by the table)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNET = dict(sample_size=32, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(160, 320, 640, 640), cross_attention_dim=768, attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
           "conv1", "conv2", "time_emb_proj")
RANK = 16


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(handles: int) -> dict:
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from lcm_core.lora import apply_lora
    from lcm_core.models.handles import LCMModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET).eval().requires_grad_(False)
    model = LCMModel(unet=unet, family="sd15", prediction_type="epsilon", scheduler_config={})
    weights_mib = sum(p.numel() * p.element_size() for p in unet.parameters()) / 2**20
    lora_mib = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(handles):
            sd = {}
            for name, m in unet.named_modules():
                if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and name.endswith(TARGETS):
                    o, n, *k = m.weight.shape
                    sd[f"unet.{name}.lora_A.weight"] = torch.randn(RANK, n, *k) * 0.01
                    sd[f"unet.{name}.lora_B.weight"] = torch.randn(o, RANK, *([1, 1] if k else [])) * 0.01
            path = Path(tmp) / f"lora_{i}.safetensors"
            save_file(sd, str(path))
            lora_mib += path.stat().st_size / 2**20
            del sd
            model, _ = apply_lora(model, None, path, 0.5, 0.0)
    x = torch.randn(1, 4, 32, 32)
    enc = torch.randn(1, 77, 768)
    with model.materialized() as patched, torch.no_grad():
        patched(x, 10, encoder_hidden_states=enc)
    return {"handles": handles, "patches": len(model.patches), "weights_mib": weights_mib,
            "lora_mib": lora_mib, "peak_mib": _peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=int, help="run one case with this many chained handles")
    parser.add_argument("--cases", type=int, nargs="+", default=[0, 1, 20])
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    rows = []
    for n in args.cases:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], cwd=ROOT, check=True,
                             capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    one = next((r for r in rows if r["handles"] == 1), None)
    print(f"command: PYTHONPATH=. python benchmarks/lora_memory.py --cases {' '.join(map(str, args.cases))}")
    print(f"UNet: SD1.5 structure at quarter width, fp32, {rows[0]['weights_mib']:.0f} MiB of weights; "
          f"LoRA rank {RANK} on the LCM-LoRA target modules")
    print("| handles | patches | LoRA files (MiB) | peak RSS (MiB) | budget: 1.1 x one handle + LoRAs (MiB) | within |")
    print("|---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        budget = 1.1 * one["peak_mib"] + r["lora_mib"] if one else float("nan")
        ok = "yes" if one and r["peak_mib"] <= budget else ("-" if not one else "NO")
        print(f"| {r['handles']} | {r['patches']} | {r['lora_mib']:.1f} | {r['peak_mib']:.0f} | "
              f"{budget:.0f} | {ok} |")


if __name__ == "__main__":
    main()
