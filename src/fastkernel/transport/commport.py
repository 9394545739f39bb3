"""The comm port of launcher mode (launcher.py): the gateway's signals and shutdown, in-process.

gateway_provisioners and Enterprise Gateway reach a remote kernel's process through it: each
request is one TCP connection carrying one JSON object, then closed (or half-closed):

- ``{"signum": 0}``: the liveness poll (every few seconds); a refused connection means the
  kernel is gone, so the socket is closed as the kernel ends.
- ``{"signum": 2}``: interrupt, as an ``interrupt_request`` does (server.interrupt_main).
- ``{"signum": N}``: signal N to the kernel process (15 stops it through its SIGTERM handler).
- ``{"shutdown": 1}``: end the kernel.

The protocol has no authentication: whoever reaches the port can interrupt or stop the kernel
(never run code: that needs the key). So it listens only on the address the kernel was reached
at, requests are small and time-boxed, and docs/security.md states the threat model.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from fastkernel.logs import log
from fastkernel.transport.frames import WakePipe
from fastkernel.transport.threadmarks import hide_from_debugger

MAX_REQUEST_BYTES = 4096  # a request is a few bytes of JSON
REQUEST_TIMEOUT_S = 2.0  # a client that connects and sends nothing does not hold the thread longer


class CommPortListener(threading.Thread):
    """Owns the listening comm socket; runs each request's action (see the module docstring)."""

    def __init__(
        self, sock: socket.socket, interrupt: Callable[[], None], shutdown: Callable[[], None]
    ) -> None:
        super().__init__(name="fastkernel-commport", daemon=True)
        hide_from_debugger(self)  # it must interrupt and stop a kernel stopped at a breakpoint
        self.sock = sock
        self.interrupt = interrupt
        self.shutdown = shutdown
        self._wake = WakePipe()
        self._stopping = False

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def run(self) -> None:
        try:
            while not self._stopping:
                ready, _, _ = select.select([self.sock.fileno(), self._wake.read_fd], [], [])
                if self.sock.fileno() in ready and not self._stopping:
                    request = self._receive()
                    if request is not None:
                        self.handle(request)
        finally:
            self.sock.close()  # from now on the gateway's liveness poll is refused

    def _receive(self) -> dict[str, Any] | None:
        try:
            conn, peer = self.sock.accept()
        except OSError:
            return None
        data = b""
        with conn:
            conn.settimeout(REQUEST_TIMEOUT_S)
            try:
                while len(data) <= MAX_REQUEST_BYTES:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
            except OSError as err:  # a timeout too: act on what arrived
                log.debug("comm port: %s from %s", err, peer[0])
        if not data:
            return None
        try:
            request = json.loads(data[:MAX_REQUEST_BYTES])
        except ValueError:
            log.warning("comm port: ignoring a request from %s that is not JSON", peer[0])
            return None
        if not isinstance(request, dict):
            log.warning("comm port: ignoring a request from %s that is not a JSON object", peer[0])
            return None
        return request

    def handle(self, request: dict[str, Any]) -> None:
        signum = request.get("signum")
        if signum is not None:
            if not isinstance(signum, int) or isinstance(signum, bool) or not 0 <= signum < signal.NSIG:
                log.warning("comm port: ignoring signum %r (not a signal number)", signum)
            elif signum == signal.SIGINT:
                log.info("comm port: interrupt")
                self.interrupt()
            elif signum:  # 0 is the liveness poll: accepting the connection answered it
                log.info("comm port: signal %d", signum)
                os.kill(os.getpid(), signum)
        if request.get("shutdown"):
            log.info("comm port: shutdown requested")
            self.shutdown()

    def stop(self) -> None:
        """Stop listening (the socket is closed when this returns, or by the thread's end)."""
        self._stopping = True
        self._wake.wake()
        if self.is_alive():
            self.join(timeout=2)
        else:
            self.sock.close()
        self._wake.close()
