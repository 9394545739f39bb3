"""The link to debugpy's adapter: one TCP connection, one reader thread (see transport/__init__.py).

The debugger (fastkernel/debugger.py) runs on the control thread and sends Debug Adapter
Protocol requests through :class:`DapLink`; the ``fastkernel-debugpy`` thread reads what the
adapter sends back, hands each response to the request waiting for it and each event to the
``on_event`` callback. A request therefore waits on this thread only, never on the main
thread, which may be stopped at a breakpoint.

DAP frames are ``Content-Length: N\\r\\n\\r\\n`` followed by N bytes of JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from fastkernel.logs import log
from fastkernel.transport.threadmarks import hide_from_debugger

DapMessage = dict[str, Any]


HEADER_END = b"\r\n\r\n"
MAX_FRAME_BYTES = 256 * 1024 * 1024  # a frame claiming more is a broken stream


class DapLinkClosed(ConnectionError):
    """The adapter closed the connection (or the link was closed) before it answered."""


def encode_frame(message: DapMessage) -> bytes:
    body = json.dumps(message, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class FrameReader:
    """Splits a byte stream into DAP messages (pure: tested without sockets)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[DapMessage]:
        self._buffer += data
        messages: list[DapMessage] = []
        while True:
            end = self._buffer.find(HEADER_END)
            if end < 0:
                return messages
            length = None
            for line in bytes(self._buffer[:end]).split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length is None or not 0 <= length <= MAX_FRAME_BYTES:
                raise ValueError(f"bad DAP frame header: {bytes(self._buffer[:end])!r}")
            start = end + len(HEADER_END)
            if len(self._buffer) < start + length:
                return messages
            messages.append(json.loads(self._buffer[start : start + length]))
            del self._buffer[: start + length]


class DapLink:
    """A connection to debugpy's adapter, and the thread that reads from it."""

    def __init__(self, host: str, port: int, on_event: Callable[[DapMessage], None]) -> None:
        self._sock = socket.create_connection((host, port), timeout=10)
        self._sock.settimeout(None)
        self._on_event = on_event
        self._send_lock = threading.Lock()
        self._waiting: dict[int, list[DapMessage]] = {}  # request seq -> [response], once it came
        self._answered = threading.Condition()
        self.closed = False
        self._thread = threading.Thread(target=self._read, name="fastkernel-debugpy", daemon=True)
        hide_from_debugger(self._thread)
        self._thread.start()

    def send(self, message: DapMessage) -> None:
        """Send a message; a request's response is then kept for :meth:`response`."""
        if message.get("type") == "request":
            with self._answered:
                self._waiting[message["seq"]] = []
        with self._send_lock:
            if self.closed:
                raise DapLinkClosed("the link to debugpy is closed")
            self._sock.sendall(encode_frame(message))

    def response(self, seq: int, timeout: float) -> DapMessage:
        """The adapter's response to the request ``seq`` sent before (matched by ``request_seq``).

        Raises TimeoutError if none came within ``timeout`` seconds, DapLinkClosed if the
        connection ended first.
        """
        try:
            with self._answered:
                if not self._answered.wait_for(lambda: self._waiting[seq] or self.closed, timeout):
                    raise TimeoutError(f"debugpy did not answer request {seq} in {timeout:.0f} s")
                if not self._waiting[seq]:
                    raise DapLinkClosed("debugpy closed the connection")
                return self._waiting[seq][0]
        finally:
            with self._answered:
                self._waiting.pop(seq, None)

    def close(self) -> None:
        with self._send_lock, self._answered:
            self.closed = True
            self._answered.notify_all()
        with contextlib.suppress(OSError):  # already closed by the adapter
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _read(self) -> None:
        reader = FrameReader()
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                for message in reader.feed(data):
                    self._dispatch(message)
        except (OSError, ValueError) as err:
            if not self.closed:
                log.warning("the link to debugpy broke: %s", err)
        finally:
            with self._answered:
                self.closed = True
                self._answered.notify_all()

    def _dispatch(self, message: DapMessage) -> None:
        if message.get("type") == "response":
            with self._answered:
                waiting = self._waiting.get(message.get("request_seq", -1))
                if waiting is not None:
                    waiting.append(message)
                    self._answered.notify_all()
            return
        if message.get("type") == "event":
            try:
                self._on_event(message)
            except Exception:  # a bug in the handler must not end the link
                log.exception("error handling the debugpy event %r", message.get("event"))
