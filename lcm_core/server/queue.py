"""The prompt queue, its history, and the one worker thread that runs it.

Shapes follow ComfyUI's `execution.PromptQueue`: a queue item is the list
`[number, prompt_id, prompt, extra_data, outputs_to_execute]`, lower numbers run first
(`front` prompts get negative numbers), and a history entry is
`{"prompt": item, "outputs": {...}, "status": {"status_str", "completed", "messages"},
"meta": {...}}`. The worker owns one `Executor`, so the node-output cache lives across
prompts, and runs in a thread so the event loop keeps serving while a sampler works.
"""

from __future__ import annotations

import copy
import heapq
import logging
import threading
from typing import Callable

from ..graph.events import Event, timestamp
from ..graph.execute import Executor, RunResult

log = logging.getLogger(__name__)

MAX_HISTORY = 10000
STEP_TEXT_EVENT = "lcm.step_text"  # our own WS message: a step's text (training loss), for web/lcm.js
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class PromptQueue:
    """Thread-safe priority queue of prompts plus the finished prompts' history."""

    def __init__(self, on_change: Callable[[], None] = lambda: None):
        self._lock = threading.RLock()
        self._not_empty = threading.Condition(self._lock)
        self._heap: list = []
        self._running: dict[int, list] = {}
        self._counter = 0
        self._closed = False
        self.history: dict[str, dict] = {}
        self.on_change = on_change

    def put(self, item: list) -> None:
        """Queue `[number, prompt_id, prompt, extra_data, outputs]`."""
        with self._lock:
            heapq.heappush(self._heap, _Item(item))
            self._not_empty.notify()
        self.on_change()

    def get(self, timeout: float | None = None) -> tuple[list, int] | None:
        """The next item and its task id (None on timeout or once closed); it counts as running."""
        with self._not_empty:
            if not self._heap and not self._closed:
                self._not_empty.wait(timeout)
            if not self._heap or self._closed:
                return None
            item = heapq.heappop(self._heap).item
            task_id = self._counter
            self._counter += 1
            self._running[task_id] = item
        self.on_change()
        return item, task_id

    def task_done(self, task_id: int, outputs: dict, status: dict, meta: dict) -> None:
        """Move a running item into the history."""
        with self._lock:
            item = copy.copy(self._running.pop(task_id))
            item[3] = {k: v for k, v in item[3].items() if k not in SENSITIVE_EXTRA_DATA_KEYS}
            while len(self.history) >= MAX_HISTORY:
                self.history.pop(next(iter(self.history)))
            self.history[item[1]] = {"prompt": item, "outputs": outputs, "status": status, "meta": meta}
        self.on_change()

    def running_and_pending(self) -> tuple[list, list]:
        """(running items, pending items in run order)."""
        with self._lock:
            return list(self._running.values()), [x.item for x in sorted(self._heap)]

    def running_ids(self) -> list[str]:
        """Prompt ids now running."""
        with self._lock:
            return [item[1] for item in self._running.values()]

    def remaining(self) -> int:
        """Pending plus running prompts (ComfyUI's `queue_remaining`)."""
        with self._lock:
            return len(self._heap) + len(self._running)

    def clear(self) -> None:
        """Drop every pending prompt."""
        with self._lock:
            self._heap = []
        self.on_change()

    def delete(self, prompt_id: str) -> bool:
        """Drop one pending prompt; True if it was there."""
        with self._lock:
            kept = [x for x in self._heap if x.item[1] != prompt_id]
            found = len(kept) != len(self._heap)
            heapq.heapify(kept)
            self._heap = kept
        if found:
            self.on_change()
        return found

    def get_history(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1) -> dict:
        """ComfyUI's `/history` answer: all, a window (`max_items`, `offset`) or one id."""
        with self._lock:
            if prompt_id is not None:
                entry = self.history.get(prompt_id)
                return {prompt_id: copy.deepcopy(entry)} if entry is not None else {}
            keys = list(self.history)
            if offset < 0 and max_items is not None:
                offset = len(keys) - max_items
            keys = keys[max(offset, 0):]
            if max_items is not None:
                keys = keys[:max(max_items, 0)]
            return {k: copy.deepcopy(self.history[k]) for k in keys}

    def clear_history(self) -> None:
        with self._lock:
            self.history = {}

    def delete_history(self, prompt_id: str) -> None:
        with self._lock:
            self.history.pop(prompt_id, None)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake and stop the worker."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()


class _Item:
    """Heap entry ordered by the queue number, then by arrival."""

    _seq = 0

    def __init__(self, item: list):
        _Item._seq += 1
        self.item = item
        self.key = (float(item[0]), _Item._seq)

    def __lt__(self, other: "_Item") -> bool:
        return self.key < other.key


Send = Callable[[str, dict, str | None], None]


class Worker:
    """Runs queued prompts one at a time on a thread, forwarding executor events to `send`.

    `send(event_name, data, client_id)` delivers a WebSocket message; execution messages
    go to the prompt's `client_id` (everyone when it has none), as in ComfyUI.
    `preview(latent, client_id)` gets each step's latent for the live preview; a step's
    text (a training loss line) goes out as our own `lcm.step_text` message.
    """

    def __init__(self, queue: PromptQueue, node_classes: dict[str, type], send: Send,
                 preview: Callable[[object, str | None], None] | None = None):
        self.queue = queue
        self.send = send
        self.preview = preview
        self.executor = Executor(node_classes, emit=self._emit)
        self._client_id: str | None = None
        self._messages: list = []
        self._deferred: list = []
        self._thread = threading.Thread(target=self._loop, name="lcm-server-worker", daemon=True)
        self.last_node: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt the running prompt and end the thread."""
        self.executor.interrupt()
        self.queue.close()
        self._thread.join(timeout)

    def interrupt(self) -> None:
        self.executor.interrupt()

    @property
    def client_id(self) -> str | None:
        """The client whose prompt is running (None when idle or anonymous)."""
        return self._client_id

    def _emit(self, event: Event) -> None:
        if event.name == "executing":
            self.last_node = event.data.get("node")
        if event.name in ("execution_start", "execution_cached", "execution_error", "execution_interrupted",
                          "execution_success"):
            self._messages.append([event.name, event.data])
        step = getattr(event, "step", None)
        if event.name == "progress" and step is not None:
            latent = step.denoised if step.denoised is not None else step.x
            if self.preview is not None and latent is not None:
                self.preview(latent, self._client_id)
            if step.text:
                self.send(STEP_TEXT_EVENT, {**event.data, "text": str(step.text)}, self._client_id)
        if event.name == "executing" and event.data.get("node") is None:
            self._deferred.append((event.name, event.data))  # as ComfyUI: sent once the history holds the prompt
            return
        self.send(event.name, event.data, self._client_id)

    def _loop(self) -> None:
        while True:
            got = self.queue.get(timeout=1.0)
            if got is None:
                if self.queue.closed:
                    return
                continue
            item, task_id = got
            try:
                self._run(item, task_id)
            except Exception as ex:  # the worker must survive anything a prompt does
                log.exception("prompt %s failed outside the executor", item[1])
                error = _error_message(item[1], str(ex), type(ex).__name__)
                status = {"status_str": "error", "completed": False, "messages": [["execution_error", error]]}
                self.queue.task_done(task_id, {}, status, {})
                self.send("execution_error", error, self._client_id)
                self.send("executing", {"node": None, "prompt_id": item[1]}, self._client_id)
                self._client_id = None

    def _run(self, item: list, task_id: int) -> None:
        _, prompt_id, prompt, extra_data, _ = item
        self._client_id = extra_data.get("client_id") if isinstance(extra_data, dict) else None
        self._messages, self._deferred = [], []
        pnginfo = extra_data.get("extra_pnginfo") if isinstance(extra_data, dict) else None
        try:
            result = self.executor.run(prompt, extra_pnginfo=pnginfo if isinstance(pnginfo, dict) else None,
                                       prompt_id=prompt_id)
        finally:
            self.last_node = None
        if not result.ok:  # ComfyUI's worker always ends a prompt with `executing: null`
            self._deferred.append(("executing", {"node": None, "prompt_id": prompt_id}))
        if result.status == "invalid":  # valid when queued, not any more (a file went away)
            error = _error_message(prompt_id, f"{result.error.get('message')}: {result.error.get('details')}",
                                   "ValidationError")
            error.update(error=result.error, node_errors=result.node_errors)
            self._messages.append(["execution_error", error])
            self.send("execution_error", error, self._client_id)
        status = {"status_str": "success" if result.ok else "error", "completed": result.ok,
                  "messages": self._messages}
        self.queue.task_done(task_id, result.outputs, status, _meta(result))
        for name, data in self._deferred:
            self.send(name, data, self._client_id)
        self._client_id = None


def _error_message(prompt_id: str, message: str, kind: str) -> dict:
    """An `execution_error` payload for a failure no node raised."""
    return {"prompt_id": prompt_id, "node_id": None, "node_type": None, "executed": [], "exception_message": message,
            "exception_type": kind, "traceback": [], "current_inputs": {}, "current_outputs": {},
            "timestamp": timestamp()}


def _meta(result: RunResult) -> dict:
    return {node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
            for node_id in result.outputs}
