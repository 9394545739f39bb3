"""Capture of file descriptors 1 and 2 (subprocesses, ``os.system``, C extensions).

At start, each captured descriptor is pointed (``os.dup2``) at the write end of a pipe, and a
copy of the original is kept so the kernel's own log still reaches the real stderr. One
thread, ``fastkernel-fdcapture``, reads the pipes and hands the text to a sink (the stream
coalescer), which attributes it to the cell running when it is read.

A C call that holds the GIL while it writes cannot be drained by a Python thread until it
returns, so the pipes are enlarged (``F_SETPIPE_SZ``, up to ``/proc/sys/fs/pipe-max-size``,
1 MiB by default on Linux): such a call may write that much at once without blocking. Where
the pipe cannot be enlarged, capture still works with the system's default size.

:meth:`FdCapture.drain` is the barrier the kernel runs before a cell's result, error, input
prompt and reply: it returns once everything written to the descriptors before the call has
been read and handed to the sink.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import select
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

from fastkernel.transport.frames import WakePipe
from fastkernel.transport.threadmarks import hide_from_debugger

log = logging.getLogger("fastkernel")

Sink = Callable[[str, str], None]  # (stream name, text)

PIPE_SIZE = 1 << 20  # asked for; the kernel falls back to what the system grants
READ_SIZE = 1 << 18
DRAIN_TIMEOUT = 10.0


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> int:
    """Grow the pipe of ``fd`` towards ``size`` bytes where the system allows; return its size."""
    try:
        import fcntl

        setsize, getsize = fcntl.F_SETPIPE_SZ, fcntl.F_GETPIPE_SZ  # Linux only
    except (ImportError, AttributeError):
        return 0  # unknown: the system default (64 KiB on Linux and macOS)
    while size >= 65536:
        try:
            return int(fcntl.fcntl(fd, setsize, size))
        except OSError:  # over pipe-max-size, or the user's pipe quota is used up
            size //= 2
    return int(fcntl.fcntl(fd, getsize))


class _CapturedFd:
    """One redirected descriptor: its pipe, the saved original and a text decoder."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.saved = os.dup(fd)  # not inheritable: children write to the pipe
        try:
            self.read_fd, write_fd = os.pipe()
        except OSError:
            os.close(self.saved)
            raise
        self.pipe_size = enlarge_pipe(write_fd)
        os.dup2(write_fd, fd)  # inheritable, as fds 1 and 2 should be
        os.close(write_fd)
        os.set_blocking(self.read_fd, False)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.eof = False

    def read(self, sink: Sink, limit: int) -> None:
        """Hand what the pipe holds (about ``limit`` bytes at most) to ``sink``."""
        total = 0
        while total < limit and not self.eof:
            try:
                data = os.read(self.read_fd, READ_SIZE)
            except BlockingIOError:
                return
            # No data: every write end is closed (user code closed or replaced the fd).
            self.eof = not data
            total += len(data)
            text = self.decoder.decode(data, final=self.eof)
            if text:
                sink(self.name, text)

    def restore(self) -> None:
        os.dup2(self.saved, self.fd)

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.saved)


class FdCapture(threading.Thread):
    """Redirects descriptors to pipes and drains them into ``sink`` on its own thread."""

    def __init__(
        self,
        sink: Sink,
        flush: Callable[[], None] = lambda: None,
        fds: tuple[tuple[int, str], ...] = ((1, "stdout"), (2, "stderr")),
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(name="fastkernel-fdcapture", daemon=True)
        hide_from_debugger(self)  # it must keep serving while a cell is stopped
        self.sink = sink
        self.flush = flush  # publishes what the sink holds, after the last read at stop()
        self.fds = fds
        self.logger = logger
        self.captured: list[_CapturedFd] = []
        self._redirected: list[tuple[logging.StreamHandler, Any, TextIO]] = []  # type: ignore[type-arg]
        self._requests: deque[threading.Event] = deque()
        self._wake = WakePipe()
        self._stopping = False
        self._busy = False  # the thread is between poll() and handing on what it read

    # -- control (any thread) -----------------------------------------------------

    def start(self) -> None:
        """Redirect the descriptors, point the kernel's log at the real stderr, start reading."""
        for stream in (sys.__stdout__, sys.__stderr__):  # buffered text goes where it was meant to
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        for fd, name in self.fds:
            try:
                self.captured.append(_CapturedFd(fd, name))
            except OSError as err:  # fd closed at launch, or out of descriptors: run without
                log.warning("not capturing fd %d: %s", fd, err)
        if not self.captured:
            return
        self._redirect_log()
        super().start()

    def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Return once all written to the descriptors before this call has reached the sink."""
        if threading.current_thread() is self or not self.is_alive() or self._idle():
            return
        done = threading.Event()
        self._requests.append(done)
        self._wake.wake()
        if not done.wait(timeout):
            log.warning("fd output was not drained within %.0f s", timeout)

    def _idle(self) -> bool:
        """Whether nothing written is on its way: the pipes are empty and no read is being handed on.

        Saves the round trip to the thread after most cells (they write nothing to the fds).
        The pipes are checked first: data gone from a pipe has been read under ``_busy``.
        """
        probe = select.poll()  # not select.select: the fds may be past FD_SETSIZE
        for fd in self.captured:
            if not fd.eof:
                probe.register(fd.read_fd, select.POLLIN)
        return not probe.poll(0) and not self._busy

    def stop(self) -> None:
        """Give the descriptors back, take in what is left in the pipes, end the thread."""
        if not self.captured:
            return
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        for fd in self.captured:
            fd.restore()
        self._restore_log()
        self._stopping = True
        self._wake.wake()
        if self.is_alive():
            self.join(timeout=5)
        if not self.is_alive():
            for fd in self.captured:
                fd.close()
            self._wake.close()
        self.captured = []
        self.flush()

    # -- the thread -----------------------------------------------------------------

    def run(self) -> None:
        poller = select.poll()
        for fd in self.captured:
            poller.register(fd.read_fd, select.POLLIN)
        poller.register(self._wake.read_fd, select.POLLIN)
        while True:
            poller.poll()
            self._busy = True  # before any read: see _idle()
            # Taken before reading: stop() gives the fds back before it sets the flag, so the
            # last round reads everything written until then.
            stopping = self._stopping
            self._wake.drain()
            waiting = list(self._requests)  # answered only after the reads that follow
            for _ in waiting:
                self._requests.popleft()
            for fd in self.captured:
                self._read(fd)
                if fd.eof:  # a pipe without writers polls readable forever
                    with contextlib.suppress(KeyError):
                        poller.unregister(fd.read_fd)
            self._busy = False
            for done in waiting:
                done.set()
            if stopping:
                return

    def _read(self, fd: _CapturedFd) -> None:
        # A pipe holds at most pipe_size bytes, so reading that much covers everything
        # written before a drain request, even while a writer keeps writing.
        try:
            fd.read(self.sink, max(fd.pipe_size, 65536) + READ_SIZE)
        except Exception:  # a failing sink must not end capture
            log.exception("handing on fd %d output failed", fd.fd)

    # -- the kernel's own log -----------------------------------------------------------

    def _redirect_log(self) -> None:
        """Point log handlers that write to a captured fd at a copy of its original.

        So the kernel's log lines reach the real stderr and never loop into a cell.
        """
        if self.logger is None:
            return
        for handler in self.logger.handlers:
            if not isinstance(handler, logging.StreamHandler):
                continue
            try:
                fileno = handler.stream.fileno()
            except (AttributeError, OSError, ValueError):
                continue
            fd = next((fd for fd in self.captured if fd.fd == fileno), None)
            if fd is not None:
                real = open(  # noqa: SIM115 (closed by _restore_log)
                    fd.saved, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
                )
                self._redirected.append((handler, handler.setStream(real), real))

    def _restore_log(self) -> None:
        for handler, original, real in self._redirected:
            handler.setStream(original)
            real.close()
        self._redirected = []
