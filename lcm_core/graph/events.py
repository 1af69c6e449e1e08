"""One event stream for every front end of the runner (CLI, reports, server).

Event names and payloads are exactly ComfyUI's WebSocket messages, so a server only
wraps each as `{"type": name, "data": data}`:

| event | when | payload |
|---|---|---|
| `execution_start` | run begins | `prompt_id`, `timestamp` |
| `execution_cached` | after planning | `nodes` (ids served from cache), `prompt_id`, `timestamp` |
| `executing` | a node starts (`node: None` when the run ends) | `node`, `display_node`, `prompt_id` |
| `progress` | a sampling/training step | `value`, `max`, `prompt_id`, `node` |
| `executed` | an output node returned a `ui`, or was served from cache | `node`, `display_node`, `output`, `prompt_id` |
| `execution_error` | a node raised | `prompt_id`, `node_id`, `node_type`, `executed`, `exception_message`, `exception_type`, `traceback`, `current_inputs`, `current_outputs` (ids of nodes with outputs), `timestamp` |
| `execution_interrupted` | the user stopped the run | `prompt_id`, `node_id`, `node_type`, `executed`, `timestamp` |
| `execution_success` | run finished | `prompt_id`, `timestamp` |

A node "finished" is the next `executing` event (as in ComfyUI's frontend); exact
per-node timings are also in the runner's result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..progress import Step

EVENT_NAMES = (
    "execution_start", "execution_cached", "executing", "progress", "executed",
    "execution_error", "execution_interrupted", "execution_success",
)


@dataclass(frozen=True)
class Event:
    """One message: `name` is ComfyUI's WebSocket message type, `data` its payload."""

    name: str
    data: dict
    step: Any = field(default=None, compare=False, repr=False)  # the engine's progress.Step (live previews, text)

    def to_ws(self) -> dict:
        """The message as ComfyUI's server sends it over the WebSocket."""
        return {"type": self.name, "data": self.data}


class EventSink(Protocol):
    """Anything that takes events: a callable."""

    def __call__(self, event: Event) -> None: ...


def timestamp() -> int:
    """Milliseconds since the epoch, as ComfyUI stamps its execution messages."""
    return int(time.time() * 1000)


@dataclass
class EventLog:
    """Keeps every event (tests, reports)."""

    events: list = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        """The event names in order."""
        return [e.name for e in self.events]


class Fanout:
    """Sends each event to several sinks."""

    def __init__(self, *sinks: Callable[[Event], None]):
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, event: Event) -> None:
        for sink in self.sinks:
            sink(event)


class StepReporter:
    """`lcm_core.progress` reporter that turns engine steps of one node into `progress`
    events and reads the runner's interrupt flag."""

    def __init__(self, emit: Callable[[Event], None], prompt_id: str, node_id: str,
                 interrupted: Callable[[], bool]):
        self.emit = emit
        self.prompt_id = prompt_id
        self.node_id = node_id
        self._interrupted = interrupted

    def step(self, step: Step) -> None:
        self.emit(Event("progress", {"value": step.i, "max": step.total,
                                     "prompt_id": self.prompt_id, "node": self.node_id},
                        step=step))

    def interrupted(self) -> bool:
        return self._interrupted()


def payload(name: str, **data: Any) -> Event:
    """An event with the `timestamp` ComfyUI adds to `execution_*` messages."""
    if name.startswith("execution_"):
        data["timestamp"] = timestamp()
    return Event(name, data)
