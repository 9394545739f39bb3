"""Where the kernel's sockets are made server-side and bound: the four message sockets here,
the heartbeat (heartbeat.py) through the same :func:`listen`.

Everything a listening socket needs before its bind is in :func:`listen`: CurveZMQ server keys
(curve must be set before bind, or the first peers connect in plain text), IPv6, and for the
ipc transport socket files only their owner can open, and for a kernel given a port range
(launcher mode, transport/launcher.py) a free port inside it, found by binding (no race).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from typing import Any

import zmq

from fastkernel.transport.connection import ConnectionError_, ConnectionInfo, CurveKeys


def check_curve(keys: CurveKeys) -> None:
    """Raise ConnectionError_ unless libzmq has CURVE and ``keys`` are a key pair."""
    if not zmq.has("curve"):
        raise ConnectionError_(
            "the connection file carries CurveZMQ keys, but this libzmq was built without CURVE "
            "(libsodium): install a pyzmq wheel, which has it, or start the kernel without encryption"
        )
    try:
        public = zmq.curve_public(keys.secret)
    except zmq.ZMQError as err:
        raise ConnectionError_(f"curve_secretkey is not a valid CurveZMQ secret key: {err}") from None
    if public != keys.public:
        raise ConnectionError_("curve_publickey is not the public key of curve_secretkey")


@contextlib.contextmanager
def _owner_only() -> Iterator[None]:
    """Files created meanwhile (ipc socket files) get no group or other permissions.

    The umask is process-wide: this runs on the start path, before any thread that creates files.
    """
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def listen(sock: zmq.Socket[Any], info: ConnectionInfo, channel: str) -> int:
    """Make ``sock`` a server (curve when ``info`` has keys) and bind it for ``channel``.

    Port 0 picks a free port (tcp) or a free socket file name (ipc). Return the real port.
    """
    if info.curve is not None:
        sock.curve_secretkey = info.curve.secret
        sock.curve_publickey = info.curve.public
        sock.curve_server = True
    if ":" in info.ip:
        sock.ipv6 = True
    port = info.ports[channel]
    if info.transport == "tcp":
        if port == 0:
            host = f"[{info.ip}]" if ":" in info.ip else info.ip
            if info.port_range is not None:
                return bind_in_range(lambda p: sock.bind(f"tcp://{host}:{p}"), info.port_range, channel)
            return int(sock.bind_to_random_port(f"tcp://{host}"))
        sock.bind(info.address(channel))
        return port
    if port == 0:
        port = 1
        while os.path.exists(f"{info.ip}-{port}"):
            port += 1
    with _owner_only():
        sock.bind(info.address(channel, port))
    os.chmod(f"{info.ip}-{port}", 0o600)  # whatever mode libzmq gave it
    return port


_TAKEN = (errno.EADDRINUSE, errno.EACCES)  # in use, or privileged: try the next port


def bind_in_range(bind: Callable[[int], object], port_range: tuple[int, int], what: str) -> int:
    """Bind with ``bind(port)`` to a free port of ``port_range`` (inclusive); return the port.

    The search starts at a random port, so kernels sharing a range rarely try the same ports.
    Raise ConnectionError_ when every port of the range is taken.
    """
    low, high = port_range
    count = high - low + 1
    start = int.from_bytes(os.urandom(4), "big") % count
    for step in range(count):
        port = low + (start + step) % count
        try:
            bind(port)
        except zmq.ZMQError as err:
            if err.errno not in _TAKEN:
                raise
        except OSError as err:
            if err.errno not in _TAKEN:
                raise
        else:
            return port
    raise ConnectionError_(
        f"no free port for {what} in the port range {low}..{high}: all {count} ports are in use "
        "(give a wider range: the kernel needs six ports, its five sockets and the comm port)"
    )


def remove_ipc_files(info: ConnectionInfo) -> None:
    """Remove the ipc socket files (libzmq removes them when it closes a socket cleanly; this
    covers the exits where it does not: an abandoned kernel's ``os._exit``, a stuck thread)."""
    for path in info.ipc_paths():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _router(ctx: zmq.Context[Any], max_bytes: int) -> zmq.Socket[Any]:
    sock: zmq.Socket[Any] = ctx.socket(zmq.ROUTER)
    sock.linger = 1000
    sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)  # libzmq drops a peer that sends more
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client takes its identity back
    return sock


class KernelSockets:
    """shell, control and stdin (ROUTER) and iopub (XPUB), bound; ``info.ports`` gets the real ports."""

    def __init__(self, info: ConnectionInfo, max_message_bytes: int) -> None:
        self.ctx = zmq.Context()
        self.shell = _router(self.ctx, max_message_bytes)
        self.control = _router(self.ctx, max_message_bytes)
        self.stdin = _router(self.ctx, max_message_bytes)
        self.iopub = self.ctx.socket(zmq.XPUB)
        self.iopub.linger = 1000
        self.iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.iopub.sndhwm = 0  # never drop output; coalescing keeps the queue short
        for name, sock in self.by_channel().items():
            info.ports[name] = listen(sock, info, name)

    def by_channel(self) -> dict[str, zmq.Socket[Any]]:
        return {"shell": self.shell, "control": self.control, "stdin": self.stdin, "iopub": self.iopub}

    def close(self) -> None:
        for sock in self.by_channel().values():
            sock.close(linger=1000)
        self.ctx.term()
