"""Run a validated API prompt with ComfyUI's semantics.

Only ancestors of output nodes run, parents before children. Each node's output is
cached under its input signature (class, constant inputs, the signatures of the nodes
feeding it, and its `IS_CHANGED` answer), so within one `Executor` a second run that
changes only the seed re-runs the sampler and what follows it and nothing upstream.
A node's exception stops the run and is reported with ComfyUI's `execution_error`
fields; outputs already saved stay. Not supported (refused at validation):
`INPUT_IS_LIST` / `OUTPUT_IS_LIST` list mapping, lazy inputs, node expansion.
"""

from __future__ import annotations

import inspect
import json
import math
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import progress
from ..errors import Interrupted, LCMError
from .events import Event, StepReporter, payload
from .validate import Validation, validate_prompt


@dataclass
class NodeTiming:
    """How one node was served in a run."""

    class_type: str
    seconds: float
    cached: bool


@dataclass
class RunResult:
    """A run's outcome; `outputs` matches ComfyUI's history `outputs` (ui per output node)."""

    status: str  # success | error | interrupted | invalid
    prompt_id: str
    outputs: dict = field(default_factory=dict)
    error: dict | None = None
    node_errors: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    executed: list = field(default_factory=list)
    cached: list = field(default_factory=list)
    output_nodes: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass
class _Entry:
    outputs: tuple
    ui: dict | None


class _NodeFailed(Exception):
    def __init__(self, node_id: str, error: BaseException, inputs: dict | None):
        super().__init__(str(error))
        self.node_id, self.error, self.inputs = node_id, error, inputs


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


def _full_type_name(kind: type) -> str:
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _const_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def execution_order(prompt: dict, outputs: list) -> list[str]:
    """Ancestors of `outputs`, each after the nodes it reads from (iterative post-order)."""
    order: list[str] = []
    done: set = set()
    for out in outputs:
        stack = [(out, False)]
        while stack:
            node_id, expanded = stack.pop()
            if node_id in done:
                continue
            if expanded:
                done.add(node_id)
                order.append(node_id)
                continue
            stack.append((node_id, True))
            parents = [str(v[0]) for v in prompt[node_id]["inputs"].values() if isinstance(v, list)]
            stack.extend((p, False) for p in reversed(parents) if p not in done)
    return order


class Executor:
    """Runs prompts over a fixed set of node classes and keeps their cache between runs."""

    def __init__(self, node_classes: dict[str, type], emit: Callable[[Event], None] | None = None):
        self.node_classes = dict(node_classes)
        self.emit = emit or (lambda event: None)
        self._cache: dict[Any, _Entry] = {}
        self._objects: dict[tuple, Any] = {}
        self._interrupt = threading.Event()
        self._declared: dict[str, dict] = {}

    def interrupt(self) -> None:
        """Ask the running prompt to stop at the next step or node boundary."""
        self._interrupt.set()

    @property
    def interrupt_requested(self) -> bool:
        """True once `interrupt()` was called during the current run."""
        return self._interrupt.is_set()

    def validate(self, prompt: dict) -> Validation:
        """Validate `prompt` against this executor's node classes."""
        return validate_prompt(prompt, self.node_classes)

    def run(self, prompt: dict, *, extra_pnginfo: dict | None = None, prompt_id: str | None = None) -> RunResult:
        """Validate, then execute `prompt`; never raises for a node's failure."""
        prompt_id = prompt_id or str(uuid.uuid4())
        started = time.perf_counter()
        checked = self.validate(prompt)
        if not checked.ok:
            return RunResult("invalid", prompt_id, error=checked.error, node_errors=checked.node_errors)
        prompt = checked.prompt
        self._declared = checked.input_types
        self._interrupt.clear()
        order = execution_order(prompt, checked.outputs)
        signatures = self._signatures(prompt, order)
        result = RunResult("success", prompt_id, output_nodes=list(checked.outputs))
        result.cached = [n for n in order if signatures[n] in self._cache]
        self.emit(payload("execution_start", prompt_id=prompt_id))
        self.emit(payload("execution_cached", nodes=list(result.cached), prompt_id=prompt_id))
        values: dict[str, tuple] = {}
        try:
            for node_id in order:
                self._serve(node_id, prompt, signatures[node_id], values, result, extra_pnginfo)
        except _NodeFailed as failed:
            self._fail(failed, prompt, values, result)
        live = set(signatures.values())
        self._cache = {k: v for k, v in self._cache.items() if k in live}
        if result.ok:
            self.emit(payload("execution_success", prompt_id=prompt_id))
            self.emit(Event("executing", {"node": None, "prompt_id": prompt_id}))
        result.seconds = time.perf_counter() - started
        return result

    def _serve(self, node_id: str, prompt: dict, signature: Any, values: dict, result: RunResult,
               extra_pnginfo: dict | None) -> None:
        class_type = prompt[node_id]["class_type"]
        start = time.perf_counter()
        entry = self._cache.get(signature)
        if entry is None:
            if self._interrupt.is_set():
                raise _NodeFailed(node_id, Interrupted("interrupted by the user"), None)
            self.emit(Event("executing", {"node": node_id, "display_node": node_id, "prompt_id": result.prompt_id}))
            entry = self._execute(node_id, prompt, values, result.prompt_id, extra_pnginfo)
            self._cache[signature] = entry
            result.executed.append(node_id)
            if entry.ui is not None:
                self.emit(Event("executed", {"node": node_id, "display_node": node_id, "output": entry.ui,
                                             "prompt_id": result.prompt_id}))
        elif node_id in result.output_nodes:
            self.emit(Event("executed", {"node": node_id, "display_node": node_id, "output": entry.ui,
                                         "prompt_id": result.prompt_id}))
        values[node_id] = entry.outputs
        if entry.ui is not None:
            result.outputs[node_id] = entry.ui
        result.timings[node_id] = NodeTiming(class_type, time.perf_counter() - start, node_id in result.cached)

    def _execute(self, node_id: str, prompt: dict, values: dict, prompt_id: str,
                 extra_pnginfo: dict | None) -> _Entry:
        class_type = prompt[node_id]["class_type"]
        cls = self.node_classes[class_type]
        kwargs = None
        try:
            kwargs = self._inputs(node_id, self._declared[class_type], prompt, values, extra_pnginfo)
            obj = self._objects.get((node_id, class_type))
            if obj is None:
                obj = self._objects[(node_id, class_type)] = cls()
            reporter = StepReporter(self.emit, prompt_id, node_id, self._interrupt.is_set)
            with progress.use(reporter):
                returned = getattr(obj, cls.FUNCTION)(**kwargs)
            return self._entry(cls, returned)
        except (Exception, KeyboardInterrupt) as ex:
            raise _NodeFailed(node_id, ex, kwargs) from ex

    @staticmethod
    def _inputs(node_id: str, declared: dict, prompt: dict, values: dict, extra_pnginfo: dict | None) -> dict:
        known = {**(declared.get("required") or {}), **(declared.get("optional") or {})}
        kwargs = {}
        for name, value in prompt[node_id]["inputs"].items():
            if name not in known:
                continue
            kwargs[name] = values[str(value[0])][value[1]] if isinstance(value, list) else value
        for name, kind in (declared.get("hidden") or {}).items():
            if kind == "PROMPT":
                kwargs[name] = prompt
            elif kind == "EXTRA_PNGINFO":
                kwargs[name] = extra_pnginfo
            elif kind == "UNIQUE_ID":
                kwargs[name] = node_id
        return kwargs

    @staticmethod
    def _entry(cls: type, returned: Any) -> _Entry:
        ui = None
        if isinstance(returned, dict):
            ui = returned.get("ui")
            returned = returned.get("result", ())
        outputs = tuple(returned) if returned is not None else ()
        expected = len(tuple(cls.RETURN_TYPES))
        if len(outputs) != expected:
            raise TypeError(f"{cls.__name__}.{cls.FUNCTION} returned {len(outputs)} value(s), "
                            f"RETURN_TYPES declares {expected}")
        return _Entry(outputs, ui)

    def _signatures(self, prompt: dict, order: list[str]) -> dict[str, Any]:
        signatures: dict[str, Any] = {}
        for node_id in order:
            entry = prompt[node_id]
            cls = self.node_classes[entry["class_type"]]
            parts = []
            for name, value in sorted(entry["inputs"].items()):
                if isinstance(value, list):
                    parts.append((name, signatures[str(value[0])], value[1]))
                else:
                    parts.append((name, _const_key(value)))
            hidden = tuple((self._declared[entry["class_type"]].get("hidden") or {}).values())
            unique = node_id if "UNIQUE_ID" in hidden or getattr(cls, "NOT_IDEMPOTENT", False) else None
            signatures[node_id] = (entry["class_type"], tuple(parts), _is_changed(cls, entry["inputs"]), unique)
        return signatures

    def _fail(self, failed: _NodeFailed, prompt: dict, values: dict, result: RunResult) -> None:
        node_id, ex = failed.node_id, failed.error
        class_type = prompt[node_id]["class_type"]
        if isinstance(ex, (Interrupted, KeyboardInterrupt)):
            result.status = "interrupted"
            result.error = payload("execution_interrupted", prompt_id=result.prompt_id, node_id=node_id,
                                   node_type=class_type, executed=list(result.executed)).data
            self.emit(Event("execution_interrupted", result.error))
            return
        message = str(ex)
        if isinstance(ex, LCMError) and ex.details:
            message = f"{message}\n{ex.details}"
        current_inputs = {k: [_format_value(v)] for k, v in (failed.inputs or {}).items()}
        result.status = "error"
        result.error = payload(
            "execution_error", prompt_id=result.prompt_id, node_id=node_id, node_type=class_type,
            executed=list(result.executed), exception_message=message, exception_type=_full_type_name(type(ex)),
            traceback=traceback.format_tb(ex.__traceback__), current_inputs=current_inputs,
            current_outputs=list(values)).data
        if isinstance(ex, LCMError):
            result.error["error"] = ex.to_comfy()
        self.emit(Event("execution_error", result.error))


def _is_changed(cls: type, inputs: dict) -> Any:
    """`IS_CHANGED` with the node's constant inputs; NaN or a raising check means always re-run."""
    fn = getattr(cls, "IS_CHANGED", None)
    if fn is None:
        return None
    constants = {k: v for k, v in inputs.items() if not isinstance(v, list)}
    params = inspect.signature(fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        constants = {k: v for k, v in constants.items() if k in params}
    try:
        answer = fn(**constants)
    except Exception:
        return object()
    if isinstance(answer, float) and math.isnan(answer):
        return object()
    return _const_key(answer)
