"""Run reports for CI: a JSON summary and JUnit XML (one testcase per output node)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .execute import RunResult


def summary(result: RunResult, workflow: str = "") -> dict:
    """The run as plain JSON: status, per-node timings, outputs (ui), and any error."""
    return {
        "workflow": workflow,
        "prompt_id": result.prompt_id,
        "status": result.status,
        "seconds": round(result.seconds, 6),
        "timings": {n: {"class_type": t.class_type, "seconds": round(t.seconds, 6), "cached": t.cached}
                    for n, t in result.timings.items()},
        "executed": list(result.executed),
        "cached": list(result.cached),
        "outputs": result.outputs,
        "error": result.error,
        "node_errors": result.node_errors,
    }


def write_json(result: RunResult, path: str | Path, workflow: str = "") -> None:
    """Write `summary(...)` to `path`."""
    Path(path).write_text(json.dumps(summary(result, workflow), indent=2, default=str) + "\n", encoding="utf-8")


def _failure_text(result: RunResult) -> tuple[str, str]:
    error = result.error or {}
    if result.status == "invalid":
        lines = [f"{error.get('message', '')}: {error.get('details', '')}"]
        for node_id, entry in result.node_errors.items():
            for item in entry["errors"]:
                lines.append(f"#{node_id} {entry['class_type']}: {item['type']}: {item['message']} ({item['details']})")
        return error.get("message", "invalid workflow"), "\n".join(lines)
    if result.status == "interrupted":
        return "interrupted", f"interrupted at node #{error.get('node_id')} ({error.get('node_type')})"
    text = f"node #{error.get('node_id')} ({error.get('node_type')}): {error.get('exception_type')}: " \
           f"{error.get('exception_message')}\n" + "".join(error.get("traceback") or [])
    return str(error.get("exception_message", "error")).splitlines()[0] if error else "error", text


def write_junit(result: RunResult, path: str | Path, workflow: str = "workflow") -> None:
    """JUnit XML: one testcase per output node (one for the workflow when none ran);
    a testcase fails when its output is missing because of the run's error."""
    suite = ET.Element("testsuite", name=workflow, time=f"{result.seconds:.3f}")
    cases = result.output_nodes or sorted({o for e in result.node_errors.values() for o in e["dependent_outputs"]})
    failures = 0
    if not cases:
        cases = [None]
    for node_id in cases:
        name = f"{workflow}#{node_id}" if node_id is not None else workflow
        timing = result.timings.get(node_id)
        case = ET.SubElement(suite, "testcase", classname=workflow, name=name,
                             time=f"{timing.seconds if timing else 0.0:.3f}")
        failed = not result.ok and (node_id is None or node_id not in result.outputs
                                    or result.status == "invalid")
        if failed:
            failures += 1
            message, text = _failure_text(result)
            kind = {"invalid": "invalid_prompt", "interrupted": "interrupted"}.get(result.status, "execution_error")
            element = ET.SubElement(case, "failure", message=message, type=kind)
            element.text = text
        elif node_id in result.outputs:
            ET.SubElement(case, "system-out").text = json.dumps(result.outputs[node_id])
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    ET.ElementTree(suite).write(str(path), encoding="utf-8", xml_declaration=True)
