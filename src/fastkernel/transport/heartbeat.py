"""The heartbeat: echoed inside libzmq, so it answers while Python holds the GIL."""

from __future__ import annotations

import threading

import zmq

from fastkernel.logs import log
from fastkernel.transport.connection import ConnectionInfo
from fastkernel.transport.sockets import listen
from fastkernel.transport.threadmarks import hide_from_debugger


class Heartbeat(threading.Thread):
    """Echo heartbeats in libzmq on a private context, stoppable via a control socket."""

    def __init__(self, info: ConnectionInfo) -> None:
        super().__init__(name="fastkernel-heartbeat", daemon=True)
        hide_from_debugger(self)  # it must keep serving while a cell is stopped
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.port = listen(self.sock, info, "hb")  # a curve server too when info has keys
        self._ctrl_in = self.ctx.socket(zmq.PAIR)
        self._ctrl_in.bind(f"inproc://hb-control-{id(self)}")
        self._ctrl_out = self.ctx.socket(zmq.PAIR)
        self._ctrl_out.connect(f"inproc://hb-control-{id(self)}")

    def run(self) -> None:
        try:
            zmq.proxy_steerable(self.sock, self.sock, None, self._ctrl_in)
        except zmq.ZMQError as err:
            log.debug("heartbeat stopped: %s", err)
        finally:
            self.sock.close(linger=0)
            self._ctrl_in.close(linger=0)

    def stop(self) -> None:
        self._ctrl_out.send(b"TERMINATE")
        self.join(timeout=2)
        self._ctrl_out.close(linger=0)
        if not self.is_alive():
            self.ctx.term()
