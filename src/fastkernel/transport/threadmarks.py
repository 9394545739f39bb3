"""Marks on the kernel's own threads (standard library only: every thread module imports it,
on the start path, where the debugger's link and its socket imports must not be)."""

from __future__ import annotations

import threading


def hide_from_debugger(thread: threading.Thread) -> None:
    """debugpy neither traces nor suspends a thread marked so: the kernel's threads must keep
    serving while the main thread is stopped at a breakpoint (attributes pydevd reads)."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
