"""The user's asyncio loop between cells: how long the main thread's idle poll may block,
and running one iteration of the loop (see KernelServer.serve)."""

from __future__ import annotations

import contextlib
from typing import Any

import zmq

from fastkernel.transport.frames import ms_until

LOOP_FALLBACK_POLL_MS = 10


def loop_timeout_ms(loop: Any) -> int | None:
    """How long the idle poll may block without starving the asyncio loop ``loop``."""
    if loop is None or loop.is_closed():
        return None
    if getattr(loop, "_ready", None):  # callbacks waiting: do not block at all
        return 0
    scheduled = getattr(loop, "_scheduled", None)
    if scheduled is None:  # not a BaseEventLoop: poll it regularly instead
        return LOOP_FALLBACK_POLL_MS
    if not scheduled:
        return None  # only the selector (polled alongside) can wake the loop
    return ms_until(scheduled[0].when(), loop.time())


def run_loop_once(loop: Any) -> None:
    """One iteration of ``loop``: run what is ready, poll its selector without blocking."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def watch_loop(poller: zmq.Poller, old: Any, new: Any) -> Any:
    """Poll ``new``'s selector (an epoll/kqueue/poll object) instead of ``old``'s; return ``new``."""
    for loop, register in ((old, False), (new, True)):
        selector = getattr(loop, "_selector", None)
        if selector is None or not hasattr(selector, "fileno"):
            continue
        if register:
            poller.register(selector.fileno(), zmq.POLLIN)
        else:
            with contextlib.suppress(KeyError, ValueError, OSError):
                poller.unregister(selector.fileno())
    return new
