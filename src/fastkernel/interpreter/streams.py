"""sys.stdout / sys.stderr replacements, and where their output goes (the output target).

:class:`KernelStream` turns file-like calls into ``sink(name, text)`` calls and knows nothing
of messages. Which cell a write belongs to is decided at write time from a context variable,
the *output target*: the kernel sets it to the running request around each execution, so
asyncio tasks (which copy the context) and threads started by cell code (see
:func:`inherit_output_target_in_threads`) keep writing to the cell that started them, even
after it finished. User code can re-target its output with :func:`output_to`.
"""

from __future__ import annotations

import contextvars
import io
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Sink = Callable[[str, str], None]


class _Target:
    """A named sentinel output target."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"fastkernel.outputs.{self.name}"


CURRENT_CELL = _Target("CURRENT_CELL")  # the cell running when the write happens (or the last one)
DISCARD = _Target("DISCARD")  # drop the output

# A request message (output goes to that cell), CURRENT_CELL, DISCARD, or a callable
# ``(stream_name, text)`` that receives the text instead.
OUTPUT_TARGET: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "fastkernel_output_target", default=CURRENT_CELL
)


def output_target() -> Any:
    """Where output written here goes now.

    Inside a cell, the request of that cell (pass it to :func:`output_to` later to write to
    that cell from elsewhere); in a thread or task, the target of the code that started it;
    :data:`CURRENT_CELL` where nothing set one.
    """
    return OUTPUT_TARGET.get()


@contextmanager
def output_to(target: Any) -> Iterator[None]:
    """Send ``sys.stdout``/``sys.stderr`` output written inside the block to ``target``.

    ``target`` is a value from :func:`output_target` (a cell's request), :data:`CURRENT_CELL`
    (whichever cell runs at the time of each write), :data:`DISCARD`, or a callable
    ``(stream_name, text)``. Threads and tasks started inside the block inherit it.
    """
    token = OUTPUT_TARGET.set(target)
    try:
        yield
    finally:
        OUTPUT_TARGET.reset(token)


_original_start = threading.Thread.start


def _start_with_target(self: threading.Thread) -> None:
    target = OUTPUT_TARGET.get()
    # Threads started where no target is set (the kernel's own) are left exactly as they are.
    if target is not CURRENT_CELL:
        run = self.run

        def run_with_target() -> None:
            OUTPUT_TARGET.set(target)
            run()

        self.run = run_with_target  # type: ignore[method-assign]
    _original_start(self)


def inherit_output_target_in_threads() -> None:
    """Make threads start with the output target of the code that starts them (idempotent).

    Only the output target is carried over, not the whole context, so other context
    variables (``decimal``'s context, say) behave in threads as they do in plain Python.
    """
    threading.Thread.start = _start_with_target  # type: ignore[method-assign]


_with_fd: weakref.WeakSet[KernelStream] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent's threads (iopub, fd capture) do not exist in a forked child
    # (multiprocessing, os.fork): write to the fd, which the parent captures, a line at a time
    # as Python's own stdout does. print() writes its text and its newline separately: two
    # writes let the parent's next print land between them.
    for stream in list(_with_fd):
        stream._sink = stream._write_fd_lines


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class KernelStream(io.TextIOBase):
    """A text stream named ``stdout`` or ``stderr`` whose writes go to ``sink``.

    ``fd`` is the file descriptor reported by :meth:`fileno`: set it when that descriptor's
    output is captured too, so ``subprocess.run(..., stdout=sys.stdout)`` reaches the cell and
    a forked child's writes go to the descriptor.
    """

    def __init__(self, name: str, sink: Sink, original: io.TextIOBase | None = None) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self._sink = sink
        self._original = original
        self._fd: int | None = None
        self._pending = ""  # a forked child's unfinished line (see _after_fork_in_child)

    @property
    def fd(self) -> int | None:
        return self._fd

    @fd.setter
    def fd(self, fd: int | None) -> None:
        self._fd = fd
        if fd is None:
            _with_fd.discard(self)
        else:
            _with_fd.add(self)

    def _write_fd_lines(self, name: str, text: str) -> None:
        """(a forked child) Whole lines to the fd at once; the rest waits for a newline or flush."""
        pending = self._pending + text
        complete, newline, rest = pending.rpartition("\n")
        self._pending = rest
        if newline:
            self._write_fd(name, complete + newline)

    def _write_fd(self, name: str, text: str) -> None:
        assert self._fd is not None
        data = memoryview(text.encode("utf-8", "replace"))
        while data:
            data = data[os.write(self._fd, data) :]

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._sink(self.name, text)
        return len(text)

    def writelines(self, lines) -> None:  # type: ignore[override]
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        # Deliberately no immediate send: the sink coalesces, so a program that
        # flushes after every write cannot flood the frontends. A forked child's
        # unfinished line goes to the fd (multiprocessing flushes as its children exit).
        if self._pending:
            pending, self._pending = self._pending, ""
            self._write_fd(self.name, pending)

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("kernel streams have no file descriptor (fd capture is off)")
        return self._fd
