"""What SIGINT does on the main thread (installed by app.py; see transport/__init__.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

_UNSHIELDED = contextlib.nullcontext()


def _never() -> bool:
    return False


class InterruptGate:
    """What SIGINT does on the main thread: raise KeyboardInterrupt in user code, nowhere else.

    ``executing`` (the interpreter's flag, true only while user code is on the stack) is
    not enough on its own: user code calls kernel code that must not be cut in half, such as
    sending ``input_request`` frame by frame on the stdin socket (a half-sent multipart
    message would corrupt the next one). Such code runs under :meth:`shielded`; an interrupt
    that arrives meanwhile is held and raised when the shield is left, if user code is still
    running then. An interrupt while idle, or held until the cell ended, is dropped.
    """

    def __init__(self, executing: Callable[[], bool] = _never) -> None:
        self.executing = executing
        self._main = threading.main_thread().ident  # signal handlers run there only
        self._depth = 0
        self._held = False

    def on_sigint(self, signum: int, frame: Any) -> None:
        if not self.executing():
            return  # idle, or kernel code between cells: a no-op
        if self._depth:
            self._held = True
            return
        raise KeyboardInterrupt

    def shielded(self) -> contextlib.AbstractContextManager[None]:
        """Hold SIGINT until the block ends (on the main thread; elsewhere it does nothing)."""
        return self if threading.get_ident() == self._main else _UNSHIELDED

    def __enter__(self) -> None:
        if not self._depth:
            self._held = False
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if not self._depth and self._held:
            self._held = False
            if self.executing() and exc[0] is None:
                raise KeyboardInterrupt
