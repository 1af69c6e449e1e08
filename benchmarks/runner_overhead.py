"""Runner overhead: `lcm_core.graph.Executor` against calling the node functions by hand.

Both sides run the same API prompt with the same node classes: "direct" instantiates
each node and calls its FUNCTION in dependency order with plain Python plumbing;
"runner" is a fresh `Executor` per run (validation, signatures, events, no cache hits).
After one warm-up run of each (model files load once into the engine's cache), runs
alternate; on a shared machine the minimum is the least-disturbed run, and the
runner's bookkeeping (its wall time outside the node functions) is the overhead
itself, free of that noise. Prints a Markdown table.

    python benchmarks/runner_overhead.py workflows/lcm_txt2img.json --models-dir D \
        --set 3.width=64 --set 3.height=64 --repeat 20

`--tiny-fixtures` writes tiny random-weight checkpoints/LoRAs under the workflow's
model names first (the tests' builders: run with `PYTHONPATH=tests`) and sets every
EmptyLatentImage to 64x64.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lcm_core import paths
from lcm_core.graph.cli import apply_overrides
from lcm_core.graph.convert import ui_to_api
from lcm_core.graph.execute import Executor, execution_order
from lcm_core.graph.formats import load
from lcm_core.graph.registry import display_names, node_classes


def run_direct(prompt: dict, classes: dict, outputs: list, extra_pnginfo: dict) -> None:
    """The baseline: each node's FUNCTION called in order, outputs passed by hand."""
    values: dict = {}
    for node_id in execution_order(prompt, outputs):
        node = prompt[node_id]
        cls = classes[node["class_type"]]
        kwargs = {k: values[v[0]][v[1]] if isinstance(v, list) else v for k, v in node["inputs"].items()}
        hidden = (cls.INPUT_TYPES().get("hidden") or {})
        kwargs.update({k: {"PROMPT": prompt, "EXTRA_PNGINFO": extra_pnginfo}.get(t, node_id) for k, t in hidden.items()})
        result = getattr(cls(), cls.FUNCTION)(**kwargs)
        values[node_id] = tuple(result.get("result", ())) if isinstance(result, dict) else tuple(result)


def measure(prompt: dict, classes: dict, extra_pnginfo: dict, repeat: int) -> tuple[list, list, list, int]:
    """(direct seconds, runner seconds, runner bookkeeping seconds, node count) over
    `repeat` alternating runs; bookkeeping is the run's wall time outside the nodes."""
    checked = Executor(classes).validate(prompt)
    if not checked.ok:
        sys.exit(f"invalid workflow: {checked.error}\n{checked.node_errors}")
    prompt, outputs = checked.prompt, checked.outputs
    run_direct(prompt, classes, outputs, extra_pnginfo)
    Executor(classes).run(prompt, extra_pnginfo=extra_pnginfo)
    direct, runner, bookkeeping = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        run_direct(prompt, classes, outputs, extra_pnginfo)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = Executor(classes).run(prompt, extra_pnginfo=extra_pnginfo)
        runner.append(time.perf_counter() - start)
        assert result.ok, result.error
        bookkeeping.append(runner[-1] - sum(t.seconds for t in result.timings.values()))
    return direct, runner, bookkeeping, len(execution_order(prompt, outputs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--input-dir", type=Path, default=None)
    parser.add_argument("--output-dir", type=Path, default=Path("benchmark-output"))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--tiny-fixtures", action="store_true", help="write tiny models first (PYTHONPATH=tests)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 steadies timings)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    classes = node_classes()
    source = load(args.workflow)
    prompt = source.prompt if source.prompt is not None else ui_to_api(source.workflow, classes, display_names())
    with contextlib.ExitStack() as stack:
        if args.tiny_fixtures:
            from lcm_core.models import configs
            from support.workflow_fixtures import fixture_folders

            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            root, args.models_dir, args.input_dir = fixture_folders(tmp, prompt)
            stack.enter_context(configs.use_root(root))
            args.overrides += [f"{n}.{k}=64" for n, node in prompt.items()
                               if node["class_type"] == "EmptyLatentImage" for k in ("width", "height")]
        paths.configure(paths.LocalFolders(models_dir=args.models_dir or paths.default_models_dir(),
                                           input_dir=args.input_dir, output_dir=args.output_dir))
        prompt = apply_overrides(prompt, args.overrides)
        direct, runner, bookkeeping, count = measure(prompt, classes, source.extra_pnginfo, args.repeat)
    d, r, b = statistics.median(direct), statistics.median(runner), statistics.median(bookkeeping)
    dmin, rmin = min(direct), min(runner)
    import torch

    print(f"`python benchmarks/runner_overhead.py {' '.join(sys.argv[1:] if argv is None else argv)}`"
          f" (torch {torch.__version__}, {args.threads} CPU thread(s))\n")
    print("| workflow | nodes | runs | direct min / median (ms) | runner min / median (ms) | difference of mins | "
          "runner bookkeeping median (ms, % of direct) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.workflow.name} | {count} | {args.repeat} | {dmin * 1e3:.1f} / {d * 1e3:.1f} | "
          f"{rmin * 1e3:.1f} / {r * 1e3:.1f} | {100 * (rmin - dmin) / dmin:+.1f}% | {b * 1e3:.2f} ({100 * b / d:.2f}%) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
