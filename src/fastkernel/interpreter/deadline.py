"""Run a function on the main thread under a deadline, without a thread: for jedi.

The interpreter runs no threads (see docs/architecture.md), so completion runs jedi on the main
thread and bounds it with :func:`call_with_deadline`: a ``SIGALRM`` timer raises
:class:`DeadlineExceeded` in the function when the time is up. The alarm is never delivered
inside parso's cache module (jedi's parser writes its cache files there), so a half-written
cache file cannot happen. A timer the user's code has running is restored afterwards. Without
``SIGALRM`` (Windows) or off the main thread, the function runs without a deadline.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Code running in this module is never interrupted: the alarm is put off a few ms instead.
PROTECTED_MODULE = "parso.cache"
_RETRY_S = 0.005


class DeadlineExceeded(BaseException):
    """Raised in the main thread by the SIGALRM handler when the function runs out of time.

    A BaseException, so that jedi's many ``except Exception`` do not swallow it.
    """


def _in_protected_module(frame: Any) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") == PROTECTED_MODULE:
            return True
        frame = frame.f_back
    return False


def call_with_deadline(fn: Callable[[], T], timeout: float) -> T:
    """``fn()``, raising :class:`DeadlineExceeded` in it once ``timeout`` seconds have passed.

    Uses ``ITIMER_REAL`` and ``SIGALRM`` on the main thread. A real-time timer that the user's
    code (or a test runner) has running is put back afterwards, less the time spent; if it is
    due within ``timeout``, or off the main thread, or without ``SIGALRM``, ``fn`` runs without
    a deadline.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return fn()
    other_delay, other_interval = signal.getitimer(signal.ITIMER_REAL)
    if other_delay and other_delay <= timeout:
        return fn()
    started = time.monotonic()
    armed = True

    def on_alarm(signum: int, frame: Any) -> None:
        if not armed:
            return
        if _in_protected_module(frame):  # never leave a half-written cache file behind
            signal.setitimer(signal.ITIMER_REAL, _RETRY_S)
            return
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            return fn()
        finally:
            armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
        if other_delay:
            left = max(other_delay - (time.monotonic() - started), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, other_interval)
