"""One progress and interruption interface for every host.

Long-running engine code (sampling, training) calls `report(...)` after each step and
`check_interrupt()` at step boundaries. Whoever runs it installs a `Reporter` with
`use(...)`: ComfyUI's progress bar adapter, the CLI's tqdm bar, or the server's
WebSocket stream. The step payload follows k-diffusion's callback shape
(`i`, `x`, `denoised`, `t`) so previews fall out of the same call.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

from .errors import Interrupted


@dataclass(frozen=True)
class Step:
    """One finished step: `i` counts from 1 to `total`."""

    i: int
    total: int
    x: Any = None
    denoised: Any = None
    t: Any = None
    text: str | None = None


class Reporter(Protocol):
    """Receives steps and answers whether the user asked to stop."""

    def step(self, step: Step) -> None: ...

    def interrupted(self) -> bool: ...


class NullReporter:
    """Ignores progress and never interrupts (the default)."""

    def step(self, step: Step) -> None:
        return None

    def interrupted(self) -> bool:
        return False


_current: contextvars.ContextVar[Reporter] = contextvars.ContextVar("lcm_progress", default=NullReporter())


def current() -> Reporter:
    """The reporter installed for this context."""
    return _current.get()


@contextlib.contextmanager
def use(reporter: Reporter) -> Iterator[Reporter]:
    """Install `reporter` for the code run inside the `with` block."""
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


def report(i: int, total: int, **payload: Any) -> None:
    """Tell the current reporter that step `i` of `total` is done."""
    current().step(Step(i=i, total=total, **payload))


def check_interrupt() -> None:
    """Raise `Interrupted` if the user asked to stop."""
    if current().interrupted():
        raise Interrupted("interrupted by the user")
