"""Server soak: N prompts through `lcm-run serve`'s app, one after another, each with a new
seed (the sampler and what follows re-run; the loader is served from the cache). Checks
that every prompt succeeds and that resident memory (RSS of this process, which holds the
server, its worker and the client) grows at most `--max-growth` after the warm-up prompts.
Prints a Markdown table and exits 1 when a prompt fails or memory grows too much.

    PYTHONPATH=.:tests python benchmarks/server_soak.py --tiny --prompts 100
    PYTHONPATH=. python benchmarks/server_soak.py workflows/lcm_txt2img.json --models-dir D

`--tiny` writes a tiny random-weight LCM checkpoint with the test fixtures
(`tests/support/checkpoints.py`) under the example's checkpoint name, and reads the tiny
configs it needs; otherwise the workflow's models come from `--models-dir`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from lcm_core import paths
from lcm_core.graph.cli import apply_overrides
from lcm_core.graph.convert import ui_to_api
from lcm_core.graph.formats import load
from lcm_core.graph.registry import display_names, node_classes
from lcm_core.server.background import BackgroundServer
from lcm_core.server.state import ServerOptions, ServerState

DEFAULT_WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "lcm_txt2img.json"


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def run_prompts(url: str, prompt: dict, seed_inputs: list, count: int, warmup: int) -> list[dict]:
    """Queue `count` prompts one by one; per prompt: seconds, status, RSS after it."""
    rows = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws?clientId=soak") as ws:
        await ws.receive_json()
        for i in range(count):
            for node_id, name in seed_inputs:
                prompt[node_id]["inputs"][name] = 1000 + i
            started = time.perf_counter()
            async with session.post(url + "/prompt", json={"prompt": prompt, "client_id": "soak"}) as r:
                answer = await r.json()
                if r.status != 200:
                    sys.exit(f"prompt refused: {json.dumps(answer)[:2000]}")
            status = None
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                    status = data["type"]
                if data["type"] == "executing" and data["data"]["node"] is None \
                        and data["data"].get("prompt_id") == answer["prompt_id"]:
                    break
            gc.collect()
            rows.append({"i": i + 1, "seconds": time.perf_counter() - started, "status": status, "rss": rss_bytes(),
                         "warm": i + 1 >= warmup})
    return rows


@contextlib.contextmanager
def tiny_models(prompt: dict):
    """A tiny LCM checkpoint under the workflow's checkpoint name (test fixtures), with tiny configs."""
    from lcm_core.models import configs
    from support import checkpoints

    with tempfile.TemporaryDirectory() as tmp:
        root = checkpoints.write_tiny_configs(Path(tmp) / "configs")
        models = Path(tmp) / "models"
        (models / "checkpoints").mkdir(parents=True)
        for node in prompt.values():
            if node["class_type"] == "LCMCheckpointLoader":
                checkpoints.write_single_file(models / "checkpoints" / node["inputs"]["ckpt_name"], "sd15", root,
                                              lcm=True)
        with configs.use_root(root):
            yield models


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workflow", nargs="?", default=str(DEFAULT_WORKFLOW))
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--tiny", action="store_true", help="use a tiny random-weight checkpoint (test fixtures)")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10, help="prompts before the memory baseline")
    parser.add_argument("--size", type=int, default=64, help="EmptyLatentImage width and height")
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed RSS growth after warm-up")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE_ID.INPUT=VALUE")
    args = parser.parse_args(argv)

    classes = node_classes()
    source = load(args.workflow)
    prompt = source.prompt if source.prompt is not None else ui_to_api(source.workflow, classes, display_names())
    prompt = apply_overrides(prompt, args.overrides)
    for node in prompt.values():
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=args.size, height=args.size)
    seed_inputs = [(n, "seed") for n, node in prompt.items() if "seed" in node["inputs"]
                   and not isinstance(node["inputs"]["seed"], list)]
    with tempfile.TemporaryDirectory() as io_dir, \
            (tiny_models(prompt) if args.tiny else contextlib.nullcontext(args.models_dir)) as models:
        paths.configure(paths.LocalFolders(models_dir=models or paths.default_models_dir(),
                                           input_dir=Path(io_dir) / "input", output_dir=Path(io_dir) / "output",
                                           temp_dir=Path(io_dir) / "temp"))
        state = ServerState(classes, display_names(), ServerOptions(port=0, user_dir=Path(io_dir) / "user"))
        server = BackgroundServer(state)
        before = rss_bytes()
        try:
            rows = asyncio.run(run_prompts(server.url, prompt, seed_inputs, args.prompts,
                                           args.warmup))
        finally:
            server.stop()
    failed = [r for r in rows if r["status"] != "execution_success"]
    base = next(r["rss"] for r in rows if r["warm"])
    peak, last = max(r["rss"] for r in rows if r["warm"]), rows[-1]["rss"]
    growth = (last - base) / base
    seconds = sorted(r["seconds"] for r in rows if r["warm"])
    mib = 1024 * 1024
    print(f"`{' '.join(['python benchmarks/server_soak.py', *(argv if argv is not None else sys.argv[1:])])}`\n")
    print("| prompts | succeeded | RSS at start | RSS after warm-up | RSS peak | RSS at end | growth after warm-up "
          "| median s/prompt |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(rows)} | {len(rows) - len(failed)} | {before / mib:.0f} MiB | {base / mib:.0f} MiB "
          f"| {peak / mib:.0f} MiB | {last / mib:.0f} MiB | {growth * 100:+.1f}% "
          f"| {seconds[len(seconds) // 2]:.3f} |")
    ok = not failed and growth <= args.max_growth
    print(f"\n{'PASS' if ok else 'FAIL'}: {len(failed)} failed, growth {growth * 100:+.1f}% "
          f"(limit {args.max_growth * 100:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
