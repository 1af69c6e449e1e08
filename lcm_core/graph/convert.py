"""UI (graph) workflow → API prompt, the way ComfyUI's frontend `graphToPrompt` does it.

- Widget values map onto the widget-typed inputs (INT, FLOAT, STRING, BOOLEAN, combos)
  in `INPUT_TYPES` order, required then optional. The frontend stores extra values that
  are not inputs: `control_after_generate` after INT `seed`/`noise_seed` (or any widget
  declaring `control_after_generate`), plus `control_filter_list` after such a combo,
  and the `upload` button value after an `image_upload` combo.
- A linked input (including a widget converted to an input) becomes `[origin_id, slot]`.
- Reroutes are followed; a PrimitiveNode gives its widget value to the converted widget;
  muted nodes (mode 2) are dropped together with links from them; bypassed nodes
  (mode 4) pass through the input whose type matches the wanted type, trying the same
  slot first; Note/MarkdownNote nodes and groups are ignored. List widget values are
  wrapped as `{"__value__": [...]}` (a bare list would read as a link).
Rules checked against the frontend 1.27 sources (`executionUtil.ts`, `ExecutableNodeDTO.ts`,
`useIntWidget.ts`, `useImageUploadWidget.ts`); subgraphs and group nodes are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowError

MODE_MUTED = 2
MODE_BYPASSED = 4
IGNORED_TYPES = frozenset({"Note", "MarkdownNote"})
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = frozenset({"seed", "noise_seed"})
_EXTRA = None  # placeholder in a widget layout for a stored value that is not an input


@dataclass(frozen=True)
class Link:
    """One link of the graph, whatever schema wrote it."""

    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: Any


@dataclass(frozen=True)
class PrimitiveValue:
    """A value coming from a PrimitiveNode rather than from a real node's output."""

    value: Any


def spec_options(decl: Any) -> dict:
    """The options dict of an input declaration (`("INT", {...})`), or {}."""
    if isinstance(decl, (tuple, list)) and len(decl) > 1 and isinstance(decl[1], dict):
        return decl[1]
    return {}


def spec_type(decl: Any) -> Any:
    """The type of an input declaration: a type name, or the list of a combo."""
    return decl[0] if isinstance(decl, (tuple, list)) and decl else decl


def is_widget(decl: Any) -> bool:
    """True when the frontend draws this input as a widget (and stores it in widgets_values)."""
    kind, opts = spec_type(decl), spec_options(decl)
    if opts.get("forceInput"):
        return False
    return isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES


def widget_layout(input_types: dict) -> tuple[list, list]:
    """(full, bare): input names in widgets_values order, with `None` for the frontend's
    extra stored values (full) and without them (bare, as some writers store it)."""
    full: list = []
    bare: list = []
    for group in ("required", "optional"):
        for name, decl in (input_types.get(group) or {}).items():
            if not is_widget(decl):
                continue
            kind, opts = spec_type(decl), spec_options(decl)
            full.append(name)
            bare.append(name)
            is_combo = isinstance(kind, (list, tuple)) or kind == "COMBO"
            if opts.get("control_after_generate") or (kind == "INT" and name in SEED_NAMES):
                full.append(_EXTRA)
                if is_combo:
                    full.append(_EXTRA)
            if opts.get("image_upload") or opts.get("video_upload") or opts.get("audio_upload"):
                full.append(_EXTRA)
    return full, bare


def _links(workflow: dict) -> dict[int, Link]:
    out: dict[int, Link] = {}
    for raw in workflow.get("links") or []:
        if isinstance(raw, (list, tuple)) and len(raw) >= 6:
            link_id, origin, oslot, target, tslot, kind = raw[:6]
        elif isinstance(raw, dict):
            link_id, origin, oslot = raw.get("id"), raw.get("origin_id"), raw.get("origin_slot")
            target, tslot, kind = raw.get("target_id"), raw.get("target_slot"), raw.get("type")
        else:
            raise WorkflowError(f"workflow link {raw!r} is neither [id, from, slot, to, slot, type] nor an object")
        if link_id is None or origin is None or target is None:
            continue
        out[link_id] = Link(str(origin), int(oslot or 0), str(target), int(tslot or 0), kind)
    return out


class _Graph:
    def __init__(self, workflow: dict):
        if not isinstance(workflow.get("nodes"), list):
            raise WorkflowError("UI workflow has no 'nodes' list")
        subgraphs = (workflow.get("definitions") or {}).get("subgraphs") or []
        self.subgraph_ids = {s.get("id") for s in subgraphs if isinstance(s, dict)}
        self.nodes: dict[str, dict] = {}
        for node in workflow["nodes"]:
            if not isinstance(node, dict) or "id" not in node or "type" not in node:
                raise WorkflowError(f"workflow node {str(node)[:80]} has no 'id' or 'type'")
            self.nodes[str(node["id"])] = node
        self.links = _links(workflow)

    def resolve(self, link_id: Any, want_type: Any) -> tuple[str, int] | PrimitiveValue | None:
        """Follow a link upstream through reroutes and bypassed nodes to a real output
        (`ExecutableNodeDTO.resolveInput` / `resolveOutput` in the frontend)."""
        for _ in range(len(self.nodes) + 2):
            link = self.links.get(link_id)
            origin = self.nodes.get(link.origin_id) if link else None
            if origin is None:
                return None
            kind, mode = origin["type"], origin.get("mode", 0)
            if kind == "Reroute":
                inputs = origin.get("inputs") or [{}]
                link_id = inputs[0].get("link")
            elif kind == "PrimitiveNode":
                values = origin.get("widgets_values") or []
                return PrimitiveValue(values[0]) if values else None
            elif kind in IGNORED_TYPES:
                return None
            elif mode == MODE_BYPASSED:
                index = _bypass_slot(origin, link.origin_slot, want_type)
                if index is None:
                    return None
                link_id = origin["inputs"][index].get("link")
            else:  # a muted origin stays linked here and is dropped with the dangling links
                return link.origin_id, link.origin_slot
        raise WorkflowError("workflow links loop through reroutes or bypassed nodes")


def _valid_connection(a: Any, b: Any) -> bool:
    """LiteGraph's `isValidConnection`: equal, a wildcard, or overlapping `A,B` unions."""
    if a in ("*", "", None) or b in ("*", "", None) or a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return bool({t.strip().lower() for t in a.split(",")} & {t.strip().lower() for t in b.split(",")})


def _bypass_slot(node: dict, slot: int, want_type: Any) -> int | None:
    """Which input of a bypassed node feeds output `slot` (the frontend's `#getBypassSlotIndex`)."""
    inputs = node.get("inputs") or []
    outputs = node.get("outputs") or []
    if want_type in ("*", ""):
        return slot if len(inputs) > slot else (0 if inputs else None)
    out_type = outputs[slot].get("type") if slot < len(outputs) else want_type
    if slot < len(inputs) and _valid_connection(inputs[slot].get("type"), out_type) \
            and _valid_connection(inputs[slot].get("type"), want_type):
        return slot
    for index, item in enumerate(inputs):
        if item.get("type") == want_type:
            return index
    for index, item in enumerate(inputs):
        if _valid_connection(item.get("type"), out_type) and _valid_connection(item.get("type"), want_type):
            return index
    return None


def widget_default(decl: Any) -> Any:
    """The value the frontend gives a new widget: its `default`, else the first choice of a
    combo, 0 for numbers, "" for text, False for a toggle (None: no value at all)."""
    kind, opts = spec_type(decl), spec_options(decl)
    if "default" in opts:
        return opts["default"]
    if isinstance(kind, (list, tuple)) or kind == "COMBO":
        choices = list(kind) if isinstance(kind, (list, tuple)) else list(opts.get("options") or [])
        return choices[0] if choices else None
    return {"INT": 0, "FLOAT": 0, "STRING": "", "BOOLEAN": False}.get(kind)


def _widget_values(node: dict, input_types: dict) -> dict:
    """Stored widget values by input name; widgets the file has no value for (an input
    added to the node after the workflow was saved) get their defaults, as in the editor."""
    values = node.get("widgets_values")
    if isinstance(values, dict):
        found = dict(values)
    else:
        values = list(values or [])
        full, bare = widget_layout(input_types)
        layout = bare if len(values) == len(bare) and len(bare) != len(full) else full
        found = {name: value for name, value in zip(layout, values) if name is not _EXTRA}
    for group in ("required", "optional"):
        for name, decl in (input_types.get(group) or {}).items():
            if name not in found and is_widget(decl) and widget_default(decl) is not None:
                found[name] = widget_default(decl)
    return {name: {"__value__": value} if isinstance(value, list) else value for name, value in found.items()}


def _input_type(decl_types: dict, name: str, fallback: Any) -> Any:
    for group in ("required", "optional"):
        decl = (decl_types.get(group) or {}).get(name)
        if decl is not None:
            kind = spec_type(decl)
            return "COMBO" if isinstance(kind, (list, tuple)) else kind
    return fallback


def ui_to_api(workflow: dict, node_classes: dict[str, type], display_names: dict[str, str] | None = None) -> dict:
    """The API prompt the frontend would queue for this UI workflow."""
    graph = _Graph(workflow)
    display_names = display_names or {}
    prompt: dict[str, dict] = {}
    for node_id, node in sorted(graph.nodes.items(), key=lambda kv: _id_key(kv[0])):
        kind, mode = node["type"], node.get("mode", 0)
        if kind in graph.subgraph_ids:
            raise WorkflowError(f"node #{node_id} is a subgraph; subgraphs are not supported headless",
                                details="Unpack the subgraph in ComfyUI (right click → Unpack Subgraph) and save again.")
        if kind in IGNORED_TYPES or kind in ("Reroute", "PrimitiveNode") or mode in (MODE_MUTED, MODE_BYPASSED):
            continue
        cls = node_classes.get(kind)
        input_types = cls.INPUT_TYPES() if cls is not None else {}
        inputs = _widget_values(node, input_types)
        for slot in node.get("inputs") or []:
            name, link_id = slot.get("name"), slot.get("link")
            if isinstance(slot.get("widget"), dict):
                name = slot["widget"].get("name", name)
            if link_id is None or name is None:
                continue
            source = graph.resolve(link_id, slot.get("type") or _input_type(input_types, name, None))
            if isinstance(source, PrimitiveValue):
                inputs[name] = {"__value__": source.value} if isinstance(source.value, list) else source.value
            elif source is not None:
                inputs[name] = [source[0], source[1]]
            elif not isinstance(slot.get("widget"), dict):
                inputs.pop(name, None)
        title = node.get("title") or display_names.get(kind) or kind
        prompt[node_id] = {"inputs": inputs, "class_type": kind, "_meta": {"title": title}}
    return _drop_dangling(prompt)


def _drop_dangling(prompt: dict) -> dict:
    """Remove links to nodes that are not in the prompt, as the frontend does last."""
    for node in prompt.values():
        for name, value in list(node["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in prompt:
                del node["inputs"][name]
    return prompt


def _id_key(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)
