"""The four message sockets, made and bound from the connection info (the heartbeat has its own)."""

from __future__ import annotations

import os
from typing import Any

import zmq

from fastkernel.transport.connection import ConnectionInfo


def bind(sock: zmq.Socket[Any], info: ConnectionInfo, channel: str) -> int:
    """Bind ``sock`` for ``channel``; port 0 picks a free port. Return the real port."""
    port = info.ports[channel]
    if info.transport == "tcp":
        if port == 0:
            host = f"[{info.ip}]" if ":" in info.ip else info.ip
            return int(sock.bind_to_random_port(f"tcp://{host}"))
        sock.bind(info.address(channel))
        return port
    if port == 0:
        port = 1
        while os.path.exists(f"{info.ip}-{port}"):
            port += 1
    sock.bind(info.address(channel, port))
    return port


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
            if ":" in info.ip:
                sock.ipv6 = True
            info.ports[name] = bind(sock, info, name)

    def by_channel(self) -> dict[str, zmq.Socket[Any]]:
        return {"shell": self.shell, "control": self.control, "stdin": self.stdin, "iopub": self.iopub}

    def close(self) -> None:
        for sock in self.by_channel().values():
            sock.close(linger=1000)
        self.ctx.term()
