"""The process's peak resident set size, read cheaply enough to measure every cell.

:class:`~fastkernel.interpreter.core.CellOutcome` reports how far a cell raised it.
"""

from __future__ import annotations

import os
import sys


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size in bytes, or None if unknown.

    ``ru_maxrss`` (about 1 us) survives ``execve``: a kernel launched by a larger process
    (jupyter_server) starts with that process's peak. While it does, Linux's own ``VmHWM``
    from /proc/self/status (about 10 us) is read instead; once the kernel's peak passes the
    inherited one, ``ru_maxrss`` is exact again.
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak if sys.platform == "darwin" else peak * 1024  # kilobytes on Linux and BSDs
    if not _inherited:
        own = _proc_status_hwm()
        _inherited.append(peak if own is not None and own < peak else 0)
    if peak > _inherited[0]:
        return peak
    return _proc_status_hwm() or peak


_inherited: list[int] = []  # ru_maxrss that came from before execve (0: none)
# (pid, fd) of /proc/self/status, kept open: re-reading costs a few us, opening 40. The pid
# check reopens it in a forked child, whose inherited fd still shows the parent.
_status: list[int] = []


def _proc_status_hwm() -> int | None:
    try:
        if not _status or _status[0] != os.getpid():
            _status[:] = [os.getpid(), os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)]
        text = os.pread(_status[1], 8192, 0)
        start = text.index(b"VmHWM:") + 6
        return int(text[start : text.index(b"kB", start)]) * 1024  # "VmHWM:   8816 kB"
    except (OSError, ValueError):
        return None
