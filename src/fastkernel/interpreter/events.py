"""Callbacks around cell execution, with IPython's event names and arguments.

``get_ipython().events.register("post_execute", f)`` is how libraries (matplotlib's inline
backend among them) act when a cell ends. Events, in order, for each cell:

- ``pre_execute()`` and ``pre_run_cell(info)`` before the code runs (``pre_run_cell`` not
  for silent requests);
- ``post_execute()`` and ``post_run_cell(result)`` after it ran, whatever happened.

A callback that raises is reported on stderr and does not stop the others or the cell.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVENTS = ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell", "shell_initialized")


@dataclass
class ExecutionInfo:
    """What ``pre_run_cell`` callbacks receive (IPython's ExecutionInfo fields)."""

    raw_cell: str
    store_history: bool = False
    silent: bool = False
    shell_futures: bool = True
    cell_id: str | None = None


@dataclass
class ExecutionResult:
    """What ``post_run_cell`` callbacks receive (IPython's ExecutionResult fields)."""

    info: ExecutionInfo
    execution_count: int | None = None
    error_before_exec: BaseException | None = None
    error_in_exec: BaseException | None = None
    result: Any = None

    @property
    def success(self) -> bool:
        return self.error_before_exec is None and self.error_in_exec is None

    def raise_error(self) -> None:
        """Re-raise the cell's exception, if it had one."""
        error = self.error_before_exec or self.error_in_exec
        if error is not None:
            raise error


class EventManager:
    """Named lists of callbacks."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENTS}

    def _list(self, event: str) -> list[Callable[..., Any]]:
        if event not in self.callbacks:
            raise KeyError(f"unknown event {event!r}; fastkernel has: {', '.join(EVENTS)}")
        return self.callbacks[event]

    def register(self, event: str, function: Callable[..., Any]) -> None:
        if not callable(function):
            raise TypeError(f"need a callable, got {function!r}")
        callbacks = self._list(event)
        if function not in callbacks:
            callbacks.append(function)

    def unregister(self, event: str, function: Callable[..., Any]) -> None:
        try:
            self._list(event).remove(function)
        except ValueError:
            raise ValueError(f"function {function!r} is not registered as a {event} callback") from None

    def trigger(self, event: str, *args: Any) -> None:
        callbacks = self.callbacks.get(event)
        if not callbacks:  # the common case, on every cell: nothing registered
            if callbacks is None:
                self._list(event)  # raises, naming the known events
            return
        for function in list(callbacks):  # a callback may unregister itself
            try:
                function(*args)
            except Exception:
                print(f"Error in callback {function!r} (for {event}):", file=sys.stderr)
                traceback.print_exc()
