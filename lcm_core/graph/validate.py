"""Validate a whole API prompt before anything runs, answering in ComfyUI's shape.

The answer mirrors the body of ComfyUI's `POST /prompt` on failure:
`{"error": {type, message, details, extra_info}, "node_errors": {id: {"errors": [...],
"dependent_outputs": [...], "class_type": ...}}}` with ComfyUI's own error type strings.
Checked against ComfyUI 0.3.64's own `validate_prompt` on the same malformed prompts:
the types agree, except where ComfyUI accepts or crashes and we refuse with a reason —
`strict=True` refuses the whole prompt when any output fails (ComfyUI runs the outputs
that did validate); a link to a missing node or slot is `bad_linked_input` (ComfyUI:
`exception_during_inner_validation`); negative slots, booleans or fractions for INT,
null/objects for STRING, and constants for link-only types are `invalid_input_type`
(ComfyUI converts or passes them); cycles are `dependency_cycle` on the nodes involved.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from .convert import spec_options, spec_type

PRIMITIVES = ("INT", "FLOAT", "STRING", "BOOLEAN")


@dataclass
class Validation:
    """The outcome: `ok`, the top-level `error`, `node_errors`, and the outputs that may run."""

    ok: bool
    error: dict | None = None
    node_errors: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)
    prompt: dict = field(default_factory=dict)
    input_types: dict = field(default_factory=dict)

    def to_comfy(self) -> dict:
        """ComfyUI's `/prompt` failure body."""
        return {"error": self.error, "node_errors": self.node_errors}


def error(kind: str, message: str, details: str = "", **extra: Any) -> dict:
    """One error entry in ComfyUI's shape."""
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def invalid(kind: str, message: str, details: str = "", node_errors: dict | None = None, **extra: Any) -> Validation:
    """A failed validation with a top-level error."""
    return Validation(ok=False, error=error(kind, message, details, **extra), node_errors=node_errors or {})


def types_match(received: Any, wanted: Any) -> bool:
    """ComfyUI's link type rule: equal, `*` on either side, or overlapping `A,B` unions."""
    received = "COMBO" if isinstance(received, (list, tuple)) else received
    wanted = "COMBO" if isinstance(wanted, (list, tuple)) else wanted
    if received == wanted or received == "*" or wanted == "*":
        return True
    if isinstance(received, str) and isinstance(wanted, str):
        return bool(set(received.split(",")) & set(wanted.split(",")))
    return False


def convert_value(kind: Any, value: Any) -> Any:
    """`value` as the widget type `kind` wants, or raise ValueError saying why."""
    if value is None or isinstance(value, dict):
        raise ValueError(f"got {type(value).__name__ if value is not None else 'null'}")
    if kind == "INT":
        if isinstance(value, bool):
            raise ValueError("got a boolean")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value} is not a whole number")
            return int(value)
        return int(value)
    if kind == "FLOAT":
        if isinstance(value, bool):
            raise ValueError("got a boolean")
        result = float(value)
        if math.isnan(result):
            raise ValueError("NaN is not a number")
        return result
    if kind == "STRING":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"got {type(value).__name__}")
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        raise ValueError(f"got {type(value).__name__} {value!r}")
    return value


def _check_constant(name: str, decl: Any, value: Any, skip_combo: bool) -> tuple[Any, dict | None]:
    kind, opts = spec_type(decl), spec_options(decl)
    info = list(decl) if isinstance(decl, tuple) else decl
    if isinstance(value, dict) and "__value__" in value:  # the frontend's wrapping of list values
        value = value["__value__"]
    if isinstance(kind, (list, tuple)) or kind == "COMBO":
        choices = list(kind) if isinstance(kind, (list, tuple)) else list(opts.get("options", []))
        if skip_combo or value in choices:
            return value, None
        shown = f"(list of length {len(choices)})" if len(choices) > 20 else str(choices)
        close = [c for c in difflib.get_close_matches(str(value), [str(c) for c in choices], n=3, cutoff=0.5)]
        hint = f" Close matches: {', '.join(close)}." if close else ""
        return value, error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {shown}.{hint}",
                            input_name=name, input_config=info if len(choices) <= 20 else None, received_value=value)
    if kind in PRIMITIVES:
        try:
            value = convert_value(kind, value)
        except (ValueError, TypeError, OverflowError) as ex:
            return value, error("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                                f"{name}, {value}, {ex}", input_name=name, input_config=info,
                                received_value=value, exception_message=str(ex))
        if kind in ("INT", "FLOAT"):
            if "min" in opts and value < opts["min"]:
                return value, error("value_smaller_than_min", f"Value {value} smaller than min of {opts['min']}",
                                    name, input_name=name, input_config=info, received_value=value)
            if "max" in opts and value > opts["max"]:
                return value, error("value_bigger_than_max", f"Value {value} bigger than max of {opts['max']}",
                                    name, input_name=name, input_config=info, received_value=value)
        return value, None
    if kind == "*":
        return value, None
    return value, error("invalid_input_type", f"Input '{name}' takes a {kind} from another node's output",
                        f"{name}, {value!r} is a constant, not a link [node_id, output_slot]",
                        input_name=name, input_config=info, received_value=value)


class _Validator:
    def __init__(self, prompt: dict, classes: dict[str, type]):
        self.prompt = prompt
        self.classes = classes
        self.errors: dict[str, list] = {}
        self.edges: dict[str, set] = {}
        self.input_types: dict[str, dict] = {}

    def node(self, node_id: str) -> None:
        entry = self.prompt[node_id]
        cls = self.classes[entry["class_type"]]
        inputs = entry["inputs"]
        declared = self.input_types.get(entry["class_type"])
        if declared is None:
            declared = self.input_types[entry["class_type"]] = cls.INPUT_TYPES()
        required = declared.get("required") or {}
        optional = declared.get("optional") or {}
        custom_args = _validate_args(cls)
        errors: list = []
        self.edges[node_id] = set()
        for flag in ("INPUT_IS_LIST", "OUTPUT_IS_LIST"):
            if getattr(cls, flag, False) and (flag == "INPUT_IS_LIST" or any(getattr(cls, flag))):
                errors.append(error("unsupported_node_feature", f"{flag} is not supported by the headless runner",
                                    f"{entry['class_type']} declares {flag}; run this workflow in ComfyUI."))
        for name, decl in [*required.items(), *optional.items()]:
            if name not in inputs:
                if name in required:
                    errors.append(error("required_input_missing", "Required input is missing", name, input_name=name))
                continue
            value = inputs[name]
            if isinstance(value, list):
                problem = self._link(name, decl, value)
                if problem is None:
                    inputs[name] = [str(value[0]), value[1]]
                    self.edges[node_id].add(str(value[0]))
                else:
                    errors.append(problem)
                continue
            value, problem = _check_constant(name, decl, value, skip_combo=name in custom_args)
            if problem is None:
                inputs[name] = value
            else:
                errors.append(problem)
        if custom_args and not errors:
            errors.extend(_custom(cls, custom_args, inputs))
        if errors:
            self.errors[node_id] = errors

    def _link(self, name: str, decl: Any, value: list) -> dict | None:
        info = list(decl) if isinstance(decl, tuple) else decl
        if len(value) != 2 or not isinstance(value[1], int) or isinstance(value[1], bool) \
                or not isinstance(value[0], (str, int)) or isinstance(value[0], bool):
            return error("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                         name, input_name=name, input_config=info, received_value=value)
        source_id, slot = str(value[0]), value[1]
        source = self.prompt.get(source_id)
        if source is None:
            return error("bad_linked_input", f"Linked node '#{source_id}' does not exist in the prompt",
                         f"{name}: [{source_id!r}, {slot}] points at a missing node", input_name=name,
                         input_config=info, received_value=value, linked_node=value)
        source_cls = self.classes.get(source["class_type"])
        if source_cls is None:
            return None
        returns = tuple(source_cls.RETURN_TYPES)
        if not 0 <= slot < len(returns):
            return error("bad_linked_input", f"Linked output slot {slot} is out of range",
                         f"{name}: node '#{source_id}' ({source['class_type']}) has {len(returns)} output(s)",
                         input_name=name, input_config=info, received_value=value, linked_node=value)
        if not types_match(returns[slot], spec_type(decl)):
            received = returns[slot]
            return error("return_type_mismatch", "Return type mismatch between linked nodes",
                         f"{name}, received_type({received}) mismatch input_type({spec_type(decl)})",
                         input_name=name, input_config=info, received_type=received, linked_node=value)
        return None


def _validate_args(cls: type) -> list[str]:
    fn = getattr(cls, "VALIDATE_INPUTS", None)
    if fn is None:
        return []
    params = inspect.signature(fn).parameters
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _custom(cls: type, args: list[str], inputs: dict) -> list:
    kwargs = {n: inputs[n] for n in args if n in inputs and not isinstance(inputs[n], list)}
    first = args[0] if args else None
    try:
        result = cls.VALIDATE_INPUTS(**kwargs)
    except Exception as ex:  # a node's own validator failing is reported, not raised
        return [error("custom_validation_failed", "Custom validation failed for node", f"{first} - {ex}",
                      input_name=first, received_value=kwargs.get(first))]
    if result is True:
        return []
    details = f"{first}" + ("" if result is False else f" - {result}")
    return [error("custom_validation_failed", "Custom validation failed for node", details,
                  input_name=first, received_value=kwargs.get(first))]


def _ancestors(start: str, edges: dict[str, set]) -> set:
    seen, stack = {start}, [start]
    while stack:
        for parent in edges.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def find_cycles(nodes: set, edges: dict[str, set]) -> set:
    """Nodes that lie on a dependency cycle (reachable from themselves)."""
    pending = {n: len(edges.get(n, set()) & nodes) for n in nodes}
    children: dict[str, list] = {n: [] for n in nodes}
    for n in nodes:
        for parent in edges.get(n, set()) & nodes:
            children[parent].append(n)
    ready = [n for n, count in pending.items() if count == 0]
    while ready:
        for child in children[ready.pop()]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    stuck = {n for n, count in pending.items() if count > 0}
    return {n for n in stuck if any(n in _ancestors(p, edges) for p in edges.get(n, set()) & stuck)}


def _structure(prompt: Any, classes: dict[str, type]) -> Validation | None:
    if not isinstance(prompt, dict):
        return invalid("invalid_prompt", "The prompt must be a JSON object mapping node ids to nodes",
                       f"got a JSON {type(prompt).__name__}")
    missing: dict = {}
    for node_id, entry in prompt.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class_type"), str):
            return invalid("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                           f"Node ID '#{node_id}'")
        if not isinstance(entry.get("inputs", {}), dict):
            return invalid("invalid_prompt", f"Node '#{node_id}' has 'inputs' that is not an object",
                           f"Node ID '#{node_id}'")
        entry.setdefault("inputs", {})
        kind = entry["class_type"]
        if kind not in classes:
            close = difflib.get_close_matches(kind, list(classes), n=5, cutoff=0.5)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            title = (entry.get("_meta") or {}).get("title", kind) if isinstance(entry.get("_meta"), dict) else kind
            missing[str(node_id)] = {
                "errors": [error("invalid_prompt", f"Cannot execute because node {kind} does not exist.",
                                 f"Node ID '#{node_id}'.{hint}", node_id=str(node_id), class_type=kind,
                                 node_title=title, close_matches=close)],
                "dependent_outputs": [], "class_type": kind}
    if missing:
        first = next(iter(missing.values()))["errors"][0]
        return Validation(ok=False, error=dict(first), node_errors=missing)
    return None


def validate_prompt(prompt: Any, classes: dict[str, type], *, strict: bool = True) -> Validation:
    """Check every node the output nodes depend on; `Validation.prompt` holds the checked
    copy with widget values converted to their declared types."""
    prompt = copy.deepcopy(prompt) if isinstance(prompt, dict) else prompt
    bad = _structure(prompt, classes)
    if bad is not None:
        return bad
    prompt = {str(k): v for k, v in prompt.items()}
    outputs = sorted((n for n, e in prompt.items() if getattr(classes[e["class_type"]], "OUTPUT_NODE", False) is True),
                     key=_id_key)
    if not outputs:
        return invalid("prompt_no_outputs", "Prompt has no outputs",
                       "Add an output node such as SaveImage or PreviewImage.")
    checker = _Validator(prompt, classes)
    todo, seen = list(outputs), set(outputs)
    while todo:
        node_id = todo.pop()
        checker.node(node_id)
        for parent in checker.edges[node_id]:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    for node_id in sorted(find_cycles(seen, checker.edges), key=_id_key):
        checker.errors.setdefault(node_id, []).append(
            error("dependency_cycle", "Dependency cycle detected", f"Node '#{node_id}' depends on its own output"))
    node_errors: dict = {}
    good = []
    for out in outputs:
        failing = [n for n in _ancestors(out, checker.edges) if n in checker.errors]
        if not failing:
            good.append(out)
        for n in failing:
            entry = node_errors.setdefault(n, {"errors": checker.errors[n], "dependent_outputs": [],
                                               "class_type": prompt[n]["class_type"]})
            entry["dependent_outputs"].append(out)
    node_errors = dict(sorted(node_errors.items(), key=lambda kv: _id_key(kv[0])))
    if node_errors and (strict or not good):
        lines = [f"{e['message']}: {e['details']}" for n in node_errors for e in node_errors[n]["errors"]]
        return Validation(ok=False, error=error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                                "\n".join(lines)), node_errors=node_errors, outputs=good, prompt=prompt,
                          input_types=checker.input_types)
    return Validation(ok=True, node_errors=node_errors, outputs=good, prompt=prompt, input_types=checker.input_types)


def _id_key(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)
