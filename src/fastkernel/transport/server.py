"""Sockets and threads: the only module that starts threads.

Threading model (keep this true when changing anything here):

======================  ==================  ===============================================
thread                  owns                does
======================  ==================  ===============================================
main                    shell, stdin        receives shell requests and runs their handlers,
                                            so user code runs on the main thread and SIGINT
                                            raises KeyboardInterrupt in it; sends shell
                                            replies; uses stdin for ``input()``.
fastkernel-control      control             receives control requests (interrupt, shutdown,
                                            kernel_info, ...) and answers them, even while a
                                            cell runs on the main thread.
fastkernel-iopub        iopub (XPUB)        sends every iopub message, in the order they
                                            were queued; answers each new subscription with
                                            ``iopub_welcome``; flushes coalesced stream
                                            output when its deadline comes.
fastkernel-heartbeat    hb, on its own      echoes heartbeats inside libzmq
                        zmq.Context         (``zmq.proxy_steerable``), so it answers while
                                            Python holds the GIL.
======================  ==================  ===============================================

No socket is touched by any thread but its owner. Other threads hand iopub messages to the
iopub thread through a deque plus a wake-up pipe; messages are serialized and signed by the
thread that produces them, which keeps the iopub thread's work to ``send_multipart``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from fastkernel.transport.connection import ConnectionInfo
from fastkernel.wire import Message, RejectLog, WireCodec, WireRejected

log = logging.getLogger("fastkernel")

Dispatch = Callable[[str, Message], None]


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


def bind(sock: zmq.Socket, info: ConnectionInfo, channel: str) -> int:
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


def _router(ctx: zmq.Context, max_bytes: int) -> zmq.Socket:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 1000
    sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)  # libzmq drops a peer that sends more
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client takes its identity back
    return sock


class IOPubThread(threading.Thread):
    """Owns the iopub XPUB socket; everything else queues frames for it."""

    def __init__(self, sock: zmq.Socket, make_welcome: Callable[[bytes], list[bytes]]) -> None:
        super().__init__(name="fastkernel-iopub", daemon=True)
        self.sock = sock
        self.make_welcome = make_welcome
        self.on_flush_due: Callable[[], None] = lambda: None
        self._queue: deque[Any] = deque()
        self._wake = WakePipe()
        self._flush_at: float | None = None
        self._stopping = False

    def put(self, frames: list[bytes]) -> None:
        self._queue.append(frames)
        self._wake.wake()

    def barrier(self, timeout: float = 10.0) -> None:
        """Wait until everything queued before this call has been sent."""
        if threading.current_thread() is self or not self.is_alive():
            return
        done = threading.Event()
        self.put(done)  # type: ignore[arg-type]
        if not done.wait(timeout):
            log.warning("iopub did not drain within %.0f s", timeout)

    def schedule_flush(self, delay: float) -> None:
        due = time.monotonic() + delay
        if self._flush_at is None or due < self._flush_at:
            self._flush_at = due
            self._wake.wake()

    def stop(self) -> None:
        self._stopping = True
        self._wake.wake()

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake.read_fd, zmq.POLLIN)
        while True:
            timeout: int | None = None
            if self._flush_at is not None:
                timeout = max(0, int((self._flush_at - time.monotonic()) * 1000) + 1)
            events = dict(poller.poll(timeout))
            if self.sock in events:
                self._welcome_subscribers()
            self._wake.drain()
            if self._flush_at is not None and time.monotonic() >= self._flush_at:
                self._flush_at = None
                self._safely(self.on_flush_due)
            self._send_queued()
            if self._stopping and not self._queue:
                break

    def _send_queued(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, threading.Event):
                item.set()
            else:
                self.sock.send_multipart(item, copy=len(item[-1]) < 65536)

    def _welcome_subscribers(self) -> None:
        while True:
            try:
                event = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":  # subscribe (XPUB_VERBOSE reports every one)
                self.sock.send_multipart(self.make_welcome(event[1:]))

    @staticmethod
    def _safely(func: Callable[[], None]) -> None:
        try:
            func()
        except Exception:
            log.exception("stream flush failed")


class Heartbeat(threading.Thread):
    """Echo heartbeats in libzmq on a private context, stoppable via a control socket."""

    def __init__(self, info: ConnectionInfo) -> None:
        super().__init__(name="fastkernel-heartbeat", daemon=True)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.port = bind(self.sock, info, "hb")
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


class ControlThread(threading.Thread):
    """Owns the control socket and runs control handlers as requests arrive."""

    def __init__(self, server: KernelServer) -> None:
        super().__init__(name="fastkernel-control", daemon=True)
        self.server = server
        self.wake = WakePipe()

    def run(self) -> None:
        server = self.server
        poller = zmq.Poller()
        poller.register(server.control, zmq.POLLIN)
        poller.register(self.wake.read_fd, zmq.POLLIN)
        while not server.stopping:
            events = dict(poller.poll())
            self.wake.drain()
            if server.control in events:
                server.receive_all(server.control, "control")


def _answers(msg: Message, request_id: str) -> bool:
    """Whether ``msg`` is the input_reply to ``request_id``.

    jupyter_client's ``KernelClient.input`` sends its reply without a parent header, so an
    unparented input_reply answers the outstanding request; a parented one must match it.
    """
    parent_id = msg["parent_header"].get("msg_id") if isinstance(msg["parent_header"], dict) else None
    return msg["msg_type"] == "input_reply" and parent_id in (None, "", request_id)


class KernelServer:
    """Binds the five sockets and runs the threads described in the module docstring."""

    def __init__(self, info: ConnectionInfo, codec: WireCodec, max_message_bytes: int) -> None:
        self.info = info
        self.codec = codec
        self.ctx = zmq.Context()
        self.stopping = False
        self.dispatch: Dispatch = lambda channel, msg: None
        self.make_welcome: Callable[[bytes], Message] | None = None
        self._rejects = RejectLog(log)
        self._codecs = {"shell": codec, "control": codec.fork(), "stdin": codec.fork()}
        self.shell = _router(self.ctx, max_message_bytes)
        self.control = _router(self.ctx, max_message_bytes)
        self.stdin = _router(self.ctx, max_message_bytes)
        self.iopub = self.ctx.socket(zmq.XPUB)
        self.iopub.linger = 1000
        self.iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.iopub.sndhwm = 0  # never drop output; coalescing keeps the queue short
        if ":" in info.ip:
            for sock in (self.shell, self.control, self.stdin, self.iopub):
                sock.ipv6 = True
        for name, sock in (
            ("shell", self.shell),
            ("control", self.control),
            ("stdin", self.stdin),
            ("iopub", self.iopub),
        ):
            info.ports[name] = bind(sock, info, name)
        self.heartbeat = Heartbeat(info)
        info.ports["hb"] = self.heartbeat.port
        self.iopub_thread = IOPubThread(self.iopub, self._welcome_frames)
        self.control_thread = ControlThread(self)
        self._main_wake = WakePipe()
        self._main_thread_id = threading.main_thread().ident

    # -- Outlet (see fastkernel.kernel.Outlet) --------------------------------

    def send(self, channel: str, msg: Message, idents: list[bytes] | None = None) -> None:
        if channel == "iopub":
            topic = f"kernel.{msg['header']['msg_type']}".encode()
            self.iopub_thread.put(self.codec.serialize(msg, [topic]))
            return
        sock = {"shell": self.shell, "control": self.control, "stdin": self.stdin}[channel]
        sock.send_multipart(self.codec.serialize(msg, idents), copy=False)

    def flush_iopub(self) -> None:
        self.iopub_thread.barrier()

    def schedule_stream_flush(self, delay: float) -> None:
        self.iopub_thread.schedule_flush(delay)

    def drain_shell(self) -> list[Message]:
        pending: list[Message] = []
        while True:
            try:
                frames = self.shell.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return pending
            msg = self._parse(frames, "shell")
            if msg is not None:
                pending.append(msg)

    def wait_input_reply(self, request_id: str) -> Message:
        """Wait on the stdin socket (main thread) for the reply to ``request_id``.

        Polls in short slices so that SIGINT (KeyboardInterrupt) and shutdown end the wait.
        """
        while not self.stopping:
            if not self.stdin.poll(100):
                continue
            msg = self._parse(self.stdin.recv_multipart(), "stdin")
            if msg is not None and _answers(msg, request_id):
                return msg
            log.debug("ignoring stale stdin message %s", msg and msg["msg_type"])
        raise EOFError("the kernel is shutting down")

    def drain_stdin(self) -> None:
        """Drop stdin messages left over from earlier prompts before asking again."""
        while self.stdin.poll(0):
            self.stdin.recv_multipart()

    def interrupt_main(self) -> None:
        if self._main_thread_id is not None:
            signal.pthread_kill(self._main_thread_id, signal.SIGINT)

    def stop(self) -> None:
        self.stopping = True
        self._main_wake.wake()
        self.control_thread.wake.wake()

    # -- receiving -------------------------------------------------------------

    def _welcome_frames(self, topic: bytes) -> list[bytes]:
        assert self.make_welcome is not None
        return self.codec.serialize(self.make_welcome(topic), [topic])

    def _parse(self, frames: list[bytes], channel: str) -> Message | None:
        try:
            return self._codecs[channel].deserialize(frames)
        except WireRejected as err:
            self._rejects.record(f"{channel}:{err.reason}")
            return None

    def receive_all(self, sock: zmq.Socket, channel: str) -> None:
        """Handle every request waiting on ``sock`` (called by its owner thread)."""
        while not self.stopping:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = self._parse(frames, channel)
            if msg is not None:
                self.dispatch(channel, msg)

    def start_threads(self) -> None:
        self.heartbeat.start()
        self.iopub_thread.start()
        self.control_thread.start()

    def serve_forever(self) -> None:
        """Serve shell requests on the calling (main) thread until :meth:`stop`."""
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self._main_wake.read_fd, zmq.POLLIN)
        while not self.stopping:
            try:
                events = dict(poller.poll())
                self._main_wake.drain()
                if self.shell in events:
                    self.receive_all(self.shell, "shell")
            except KeyboardInterrupt:
                continue  # an interrupt while idle is a no-op

    def close(self) -> None:
        """Send what is queued, stop the threads and close every socket."""
        self.stop()
        self.iopub_thread.stop()
        self.iopub_thread.join(timeout=5)
        self.control_thread.join(timeout=5)
        self.heartbeat.stop()
        for sock in (self.shell, self.control, self.stdin, self.iopub):
            sock.close(linger=1000)
        self.ctx.term()
        self._main_wake.close()
