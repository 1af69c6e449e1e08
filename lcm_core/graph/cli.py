"""`lcm-run`: run a ComfyUI workflow (UI or API JSON, or a PNG that embeds one) headlessly.

Exit status: 0 success, 1 invalid workflow, 2 a node failed, 130 interrupted.
`--help`, `--list-nodes` and `--validate-only` load no model (and import no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import paths
from ..devices import DEVICE_CHOICES
from ..errors import LCMError
from .events import Event
from .execute import Executor, RunResult
from .validate import error as error_entry

EXIT_CODES = {"success": 0, "invalid": 1, "error": 2, "interrupted": 130}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render `--help`)."""
    parser = argparse.ArgumentParser(
        prog="lcm-run", description="Run a ComfyUI workflow made of comfyui-lcm nodes headlessly.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 success, 1 invalid workflow, 2 execution error, 130 interrupted.\n\n"
               "lcm-run serve [--host H] [--port P] ...  serves ComfyUI's API and editor for these nodes\n"
               "                                         (see lcm-run serve --help)")
    parser.add_argument("workflow", nargs="?", help="workflow .json (UI or API format) or a PNG saved by ComfyUI")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE_ID.INPUT=VALUE",
                        help="override an input; VALUE is parsed as JSON, else taken as a string (repeatable)")
    parser.add_argument("--models-dir", type=Path, help="folder with checkpoints/, loras/, ... "
                        "(default: $LCM_MODELS_DIR, a ComfyUI install's models/, or the pack's models/)")
    parser.add_argument("--input-dir", type=Path, help="folder LoadImage reads from (default ./input)")
    parser.add_argument("--output-dir", type=Path, help="folder SaveImage writes to (default ./output)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="compute device (default: $LCM_DEVICE or auto)")
    parser.add_argument("--report", type=Path, metavar="OUT.json", help="write a JSON run report")
    parser.add_argument("--junit", type=Path, metavar="OUT.xml", help="write a JUnit XML report")
    parser.add_argument("--validate-only", action="store_true", help="check the workflow; run nothing")
    parser.add_argument("--export-api", type=Path, metavar="OUT.json",
                        help="write the API-format prompt (after UI conversion and --set) to OUT.json")
    parser.add_argument("--list-nodes", action="store_true", help="list the node classes and exit")
    return parser


def parse_override(item: str) -> tuple[str, str, Any]:
    """`NODE_ID.INPUT=VALUE` → (node id, input name, value parsed as JSON or kept as text)."""
    target, sep, raw = item.partition("=")
    node_id, dot, name = target.rpartition(".")
    if not sep or not dot or not node_id or not name:
        raise LCMError(f"--set {item!r} is not NODE_ID.INPUT=VALUE", details="Example: --set 3.seed=42")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return node_id, name, value


def apply_overrides(prompt: dict, overrides: Sequence[str]) -> dict:
    """A copy of `prompt` with each `--set` applied; unknown node ids are refused."""
    prompt = json.loads(json.dumps(prompt))
    for item in overrides:
        node_id, name, value = parse_override(item)
        node = prompt.get(node_id)
        if not isinstance(node, dict):
            raise LCMError(f"--set {item!r}: there is no node '#{node_id}' in the workflow",
                           details=f"Node ids in this workflow: {', '.join(sorted(prompt, key=str))}.")
        node.setdefault("inputs", {})[name] = value
    return prompt


def list_nodes(out=None) -> None:
    """Print every node class with its display name, category and inputs."""
    from .registry import display_names, node_classes

    out = out or sys.stdout
    names = display_names()
    for class_type, cls in sorted(node_classes().items()):
        declared = cls.INPUT_TYPES()
        inputs = [f"{n}{'' if g == 'required' else '?'}" for g in ("required", "optional")
                  for n in (declared.get(g) or {})]
        out.write(f"{class_type}\t{names.get(class_type, class_type)}\t{getattr(cls, 'CATEGORY', '')}\t"
                  f"{', '.join(inputs)} -> {', '.join(cls.RETURN_TYPES)}\n")


class Console:
    """Event sink for the terminal: a tqdm bar per sampling node on a TTY, plain lines otherwise."""

    def __init__(self, prompt: dict, stream=None):
        self.prompt = prompt
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar = None

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, event: Event) -> None:
        data = event.data
        if event.name == "executing":
            self._close_bar()
            if data["node"] is not None:
                self._line(f"#{data['node']} {self.prompt[data['node']]['class_type']}")
        elif event.name == "execution_cached" and data["nodes"]:
            self._line(f"cached: {', '.join('#' + n for n in data['nodes'])}")
        elif event.name == "progress":
            if self.tty:
                if self.bar is None or self.bar.total != data["max"]:
                    from tqdm import tqdm

                    self._close_bar()
                    self.bar = tqdm(total=data["max"], file=self.stream, leave=False, desc=f"#{data['node']}")
                self.bar.update(data["value"] - self.bar.n)
            else:
                self._line(f"  step {data['value']}/{data['max']}")
        elif event.name == "executed":
            for image in data["output"].get("images", []):
                folder = paths.folders(image["type"])[0] if image["type"] in paths.IO_KINDS else Path(image["type"])
                self._line(f"  saved {folder / image['subfolder'] / image['filename']}")
        elif event.name in ("execution_error", "execution_interrupted", "execution_success"):
            self._close_bar()


def _print_failure(result: RunResult) -> None:
    stream = sys.stderr
    error = result.error or {}
    if result.status == "invalid":
        stream.write(f"invalid workflow: {error.get('message')}\n")
        for node_id, entry in result.node_errors.items():
            for item in entry["errors"]:
                stream.write(f"  #{node_id} {entry['class_type']}: {item['message']}: {item['details']}\n")
        if not result.node_errors and error.get("details"):
            stream.write(f"  {error['details']}\n")
    elif result.status == "interrupted":
        stream.write(f"interrupted at #{error.get('node_id')} {error.get('node_type')}\n")
    elif result.status == "error":
        stream.write("".join(error.get("traceback") or []))
        stream.write(f"error in #{error.get('node_id')} {error.get('node_type')}: "
                     f"{error.get('exception_type')}: {error.get('exception_message')}\n")


def _configure(args: argparse.Namespace) -> None:
    paths.configure(paths.LocalFolders(
        models_dir=args.models_dir or paths.default_models_dir(), input_dir=args.input_dir,
        output_dir=args.output_dir))
    if args.device:
        os.environ["LCM_DEVICE"] = args.device


def _invalid(ex: LCMError) -> RunResult:
    extra = {"input_name": ex.input_name} if ex.input_name else {}
    return RunResult("invalid", "", error=error_entry(ex.type, ex.message, ex.details, **extra))


def _with_sigint(executor: Executor, run: Callable[[], RunResult]) -> RunResult:
    """Run with Ctrl-C asking the executor to stop at the next step; a second Ctrl-C raises."""
    def handler(signum, frame):
        if executor.interrupt_requested:
            raise KeyboardInterrupt
        executor.interrupt()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return run()
    try:
        return run()
    finally:
        signal.signal(signal.SIGINT, previous)


def run_workflow(args: argparse.Namespace) -> RunResult:
    """Load, convert, override, validate and (unless --validate-only) run the workflow."""
    from .convert import ui_to_api
    from .formats import load
    from .registry import display_names, node_classes

    classes = node_classes()
    try:
        source = load(args.workflow)
        prompt = source.prompt if source.prompt is not None else ui_to_api(source.workflow, classes, display_names())
        prompt = apply_overrides(prompt, args.overrides)
    except LCMError as ex:
        return _invalid(ex)
    if args.export_api:
        args.export_api.write_text(json.dumps(prompt, indent=2) + "\n", encoding="utf-8")
    executor = Executor(classes)
    if args.validate_only:
        checked = executor.validate(prompt)
        if checked.ok:
            return RunResult("success", "", output_nodes=list(checked.outputs))
        return RunResult("invalid", "", error=checked.error, node_errors=checked.node_errors)
    executor.emit = Console(prompt)
    return _with_sigint(executor, lambda: executor.run(prompt, extra_pnginfo=source.extra_pnginfo))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `lcm-run`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from ..server.cli import main as serve

        return serve(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_nodes:
        list_nodes()
        return 0
    if not args.workflow:
        parser.error("the workflow file is required (or use --list-nodes)")
    _configure(args)
    try:
        result = run_workflow(args)
    except KeyboardInterrupt:
        result = RunResult("interrupted", "", error={"node_id": None, "node_type": None, "executed": []})
    name = Path(args.workflow).name
    if args.report:
        from .report import write_json

        write_json(result, args.report, name)
    if args.junit:
        from .report import write_junit

        write_junit(result, args.junit, name)
    if result.ok:
        what = "valid" if args.validate_only else f"done in {result.seconds:.2f}s"
        sys.stderr.write(f"{name}: {what}\n")
    else:
        _print_failure(result)
    return EXIT_CODES[result.status]


if __name__ == "__main__":
    sys.exit(main())
