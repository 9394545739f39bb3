"""The control thread: the one owner of the control socket (see transport/server.py)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import zmq

from fastkernel.interfaces import Core
from fastkernel.lifecycle import ParentWatch
from fastkernel.logs import log
from fastkernel.transport.daplink import hide_from_debugger
from fastkernel.transport.frames import WakePipe, ms_until

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
                server.receive_all("control", self.core)
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
