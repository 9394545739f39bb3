"""The two seams between the transport and the kernel core, one protocol per direction.

app.py builds a :class:`~fastkernel.transport.server.KernelServer` (an :class:`Outlet`) and a
:class:`~fastkernel.kernel.Kernel` (a :class:`Core`) and hands each to the other through
constructors and ``KernelServer.serve(core)``; mypy checks both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from fastkernel.messages import Message


class DebugLink(Protocol):
    """A connection to debugpy's adapter (transport/daplink.py): DAP messages as dicts."""

    def send(self, message: dict[str, Any]) -> None:
        """Send a DAP message; a request's response is kept for :meth:`response`."""

    def response(self, seq: int, timeout: float) -> dict[str, Any]:
        """The response to the request ``seq``; TimeoutError, or ConnectionError if the link ended."""
        ...

    def close(self) -> None:
        """Close the connection and end its reader thread."""


class Outlet(Protocol):
    """What the core needs from the transport."""

    def send(self, channel: str, msg: Message, idents: list[bytes] | None = None) -> None:
        """Sign and send ``msg`` on ``channel`` (iopub: queued for the iopub thread)."""

    def flush_iopub(self) -> None:
        """Return once every iopub message queued so far has been handed to zmq."""

    def schedule_stream_flush(self, delay: float, flush: Callable[[], None]) -> None:
        """Call ``flush`` on the iopub thread ``delay`` seconds from now."""

    def wait_for_room(self) -> None:
        """Hold a thread that writes output while slow subscribers lag too far behind."""

    def shielded(self) -> AbstractContextManager[None]:
        """Hold SIGINT until the block ends (kernel code that must not be cut in half)."""

    def drain_shell(self) -> list[Message]:
        """Shell requests already waiting, taken off the socket without blocking."""
        ...

    def interrupt_main(self) -> None:
        """SIGINT to the main thread (user code there), then to what cells started."""

    def drain_stdin(self) -> None:
        """Drop unread stdin messages (answers to earlier, abandoned prompts)."""

    def next_stdin(self) -> Message:
        """Block (interruptibly) for the next valid stdin message; EOFError at shutdown."""
        ...

    def stop(self) -> None:
        """Leave the serving loops; called after a shutdown reply has been sent."""

    def create_subshell(self) -> str:
        """Start a subshell (JEP 91); return its id."""
        ...

    def delete_subshell(self, subshell_id: str) -> None:
        """End a subshell's thread (after its running request); KeyError if there is none."""

    def list_subshells(self) -> list[str]:
        """The ids of the live subshells."""
        ...

    def open_debug_link(self, host: str, port: int, on_event: Callable[[dict[str, Any]], None]) -> DebugLink:
        """Connect to debugpy's adapter at ``host:port``; its events go to ``on_event`` (another thread)."""
        ...


class Core(Protocol):
    """What the transport needs from the core."""

    def dispatch(self, channel: str, msg: Message) -> None:
        """Handle one request from ``channel`` ("shell" or "control"), on that socket's thread."""

    def on_idle(self) -> float | None:
        """Main-thread work when no request waits; seconds until it wants to run again, or None."""
        ...

    def event_loop(self) -> Any:
        """The user's asyncio loop, once a cell has made one (run between requests), else None."""

    def executing(self, thread_id: int | None = None) -> bool:
        """Whether user code is on the stack of the thread ``thread_id`` (default: the calling one)."""
        ...

    def refuse(self, msg: Message, ename: str, evalue: str, channel: str = "shell") -> None:
        """Answer a request from ``channel`` without running it: busy, an error reply, idle."""

    def runs_on_control_worker(self, msg_type: str) -> bool:
        """Whether a ``msg_type`` request on control runs on the control worker thread (it runs
        user code, as an execute_request does) rather than on the control thread itself."""
        ...
