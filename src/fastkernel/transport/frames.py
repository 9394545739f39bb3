"""Sending frames cheaply, and a wake-up pipe that a zmq.Poller can wait on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import zmq

SNDMORE = int(zmq.SNDMORE)
COPY_BELOW = 65536  # smaller frames are copied (cheaper than tracking); larger ones are not
try:  # the backend's send, without the sugar layer's per-call enum and option handling
    from zmq.backend import Socket as _BackendSocket

    raw_send: Callable[..., Any] = _BackendSocket.send
except ImportError:  # pragma: no cover - every pyzmq has it; keep working if that changes
    raw_send = zmq.Socket.send


def send_frames(sock: zmq.Socket[Any], frames: list[Any]) -> None:
    """``sock.send_multipart(frames)`` at a quarter of its cost (3 us instead of 13 for 7 frames)."""
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        raw_send(sock, frame, SNDMORE if index < last else 0, len(frame) < COPY_BELOW)


class WakePipe:
    """A non-blocking pipe that a zmq.Poller can wait on, to wake a thread from poll."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def wake(self) -> None:
        # A full pipe already guarantees that the reader wakes.
        with contextlib.suppress(BlockingIOError):
            os.write(self.write_fd, b"!")

    def drain(self) -> None:
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


def ms_until(deadline: float, now: float) -> int:
    """Whole milliseconds from ``now`` to ``deadline``, rounded up so a poll does not wake early."""
    return max(0, int((deadline - now) * 1000) + 1)
