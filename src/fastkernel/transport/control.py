"""The control thread: the one owner of the control socket (see transport/__init__.py)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import zmq

from fastkernel.interfaces import Core
from fastkernel.lifecycle import ParentWatch
from fastkernel.logs import log
from fastkernel.messages import Message
from fastkernel.transport.frames import WakePipe, ms_until, send_frames
from fastkernel.transport.subshells import JOIN_S, ControlWorker
from fastkernel.transport.threadmarks import hide_from_debugger

if TYPE_CHECKING:
    from fastkernel.transport.server import KernelServer

PARENT_POLL_MS = 1000
ORPHAN_EXIT_S = 3.0  # an orphaned kernel whose main thread does not stop (a cell ignores interrupts) exits


class ControlThread(threading.Thread):
    """Serves control requests as they arrive, and watches the process that launched the kernel."""

    def __init__(self, server: KernelServer, core: Core, parent_watch: ParentWatch | None) -> None:
        super().__init__(name="fastkernel-control", daemon=True)
        hide_from_debugger(self)  # it must keep serving while a cell is stopped
        self.server = server
        self.core = core
        self.parent_watch = parent_watch
        self.wake = WakePipe()
        self._outbox: deque[list[bytes]] = deque()  # replies from the control worker
        self._worker: ControlWorker | None = None  # made by the first request it runs

    def post(self, frames: list[bytes]) -> None:
        """Send ``frames`` on the control socket from this thread (any thread may call it)."""
        self._outbox.append(frames)
        self.wake.wake()

    def stop_worker(self) -> None:
        """(shutdown) End the control worker: running user code interrupted, queued requests refused."""
        worker = self._worker
        if worker is not None:
            worker.end(JOIN_S)

    def run(self) -> None:
        server, watch = self.server, self.parent_watch
        poller = zmq.Poller()
        poller.register(server.sockets.control, zmq.POLLIN)
        poller.register(self.wake.read_fd, zmq.POLLIN)
        # With a parent to watch, wake every second to see whether it is still there.
        check_at = time.monotonic() + PARENT_POLL_MS / 1000
        orphaned = False
        while not server.stopping:
            events = dict(poller.poll(ms_until(check_at, time.monotonic()) if watch else None))
            self.wake.drain()
            if server.sockets.control in events:
                self._receive_all()
            self.send_posted()
            if watch is not None and time.monotonic() >= check_at:
                check_at = time.monotonic() + PARENT_POLL_MS / 1000
                reason = watch.gone()
                if reason:
                    log.warning("%s: shutting down", reason)
                    orphaned = True
                    server.stop_soon()
        if orphaned and not server.served.wait(ORPHAN_EXIT_S):
            log.error("the main thread did not stop %.0f s after the parent's end: exiting", ORPHAN_EXIT_S)
            server.on_abandoned()

    def _receive_all(self) -> None:
        """Handle every request waiting on control: here, or on the worker if it runs user code."""
        server, sock = self.server, self.server.sockets.control
        while not server.stopping:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = server.parse(frames, "control")
            if msg is None:
                continue
            if self.core.runs_on_control_worker(msg["msg_type"]):
                self._to_worker(msg)
            else:
                server.dispatch_safely("control", msg, self.core)

    def _to_worker(self, msg: Message) -> None:
        if self._worker is None:
            self._worker = ControlWorker(self.server, self.core)
            self._worker.start()
        if not self._worker.put(msg):  # stopping: answer it here
            self.core.refuse(msg, *self._worker.refusal(), channel="control")

    def send_posted(self) -> None:
        """Send the worker's replies (this thread; or any once this thread has ended)."""
        while self._outbox:
            send_frames(self.server.sockets.control, self._outbox.popleft())
