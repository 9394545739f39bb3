"""Sockets and threads: the transport package is the only code that starts threads.

Threading model (keep this true when changing anything here):

======================  ==================  ===============================================
thread                  owns                does
======================  ==================  ===============================================
main                    shell, stdin        receives shell requests and runs their handlers,
                                            so user code runs on the main thread and SIGINT
                                            raises KeyboardInterrupt in it; sends shell
                                            replies; uses stdin for ``input()``. While
                                            idle it also runs the user's asyncio loop (once
                                            a cell made one), so cells' tasks keep running,
                                            and the core's ``on_idle`` work: finishing the
                                            kernel's start after the first reply, writing
                                            the input history to SQLite, batched.
fastkernel-control      control             (control.py) receives control requests
                                            (interrupt, shutdown, kernel_info, ...) and
                                            answers them, even while a cell runs on the main
                                            thread. Also checks once a second that the
                                            process that launched the kernel lives
                                            (lifecycle.ParentWatch) and stops the kernel
                                            when it is gone; if the main thread has not
                                            stopped ``ORPHAN_EXIT_S`` later, it ends the
                                            process.
fastkernel-iopub        iopub (XPUB)        (iopub.py) sends every iopub message, in the
                                            order they were queued; answers each new
                                            subscription with ``iopub_welcome``; runs timed
                                            flushes of coalesced stream output.
fastkernel-heartbeat    hb, on its own      (heartbeat.py) echoes heartbeats inside libzmq
                        zmq.Context         (``zmq.proxy_steerable``), so it answers while
                                            Python holds the GIL. Started first, right
                                            after the sockets are bound.
fastkernel-fdcapture    the read ends of    (fdcapture.py) only with fd capture on: reads
                        the fd 1 and fd 2   what subprocesses and C code write to fds 1 and
                        pipes               2 and hands it to the stream coalescer; answers
                                            drain barriers before each reply. Started by
                                            the core when it builds its runtime.
======================  ==================  ===============================================

No socket is touched by any thread but its owner. Other threads hand iopub messages to the
iopub thread (see iopub.py for batching and backpressure).

Interrupts: SIGINT is handled on the main thread by :class:`InterruptGate` (interrupts.py),
which raises KeyboardInterrupt only while user code runs, and holds it while user code is
inside kernel code that must not be cut in half (the stdin socket's multipart sends and
receives in ``input()``); the control thread's ``interrupt_request`` signals the main thread
first, then the kernel's descendants in its process group (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable

import zmq

from fastkernel.interfaces import Core
from fastkernel.lifecycle import ParentWatch, interrupt_group_members
from fastkernel.logs import log
from fastkernel.messages import Message
from fastkernel.transport.control import ControlThread
from fastkernel.transport.eventloop import loop_timeout_ms, run_loop_once, watch_loop
from fastkernel.transport.frames import WakePipe, ms_until, send_frames
from fastkernel.transport.heartbeat import Heartbeat
from fastkernel.transport.interrupts import InterruptGate
from fastkernel.transport.iopub import IOPubThread
from fastkernel.transport.sockets import KernelSockets
from fastkernel.wire import RejectLog, WireCodec, WireRejected


def _exit_now() -> None:
    os._exit(1)


class KernelServer:
    """Serves a core over bound sockets: the threads in the module docstring; an ``Outlet``."""

    def __init__(
        self,
        sockets: KernelSockets,
        heartbeat: Heartbeat,
        codec: WireCodec,
        welcome: Callable[[str], Message],
        *,
        parent_watch: ParentWatch | None = None,
        on_abandoned: Callable[[], None] = _exit_now,
    ) -> None:
        self.sockets = sockets
        self.heartbeat = heartbeat
        self.codec = codec
        self.welcome = welcome  # the iopub_welcome message for a subscription topic
        self.parent_watch = parent_watch
        self.on_abandoned = on_abandoned  # orphaned and the main thread is stuck
        self.stopping = False
        self.served = threading.Event()  # serve has returned
        self.gate = InterruptGate(self._executing)  # the SIGINT handler (app.py installs it)
        self.iopub_thread = IOPubThread(sockets.iopub, self._welcome_frames)
        self._codecs = {"shell": codec, "control": codec.fork(), "stdin": codec.fork()}
        self._rejects = RejectLog(log)
        self._main_wake = WakePipe()
        self._main_thread_id = threading.main_thread().ident
        self._core: Core | None = None
        self._control: ControlThread | None = None

    # -- Outlet (fastkernel.interfaces) ------------------------------------------

    def send(self, channel: str, msg: Message, idents: list[bytes] | None = None) -> None:
        if channel == "iopub":
            topic = f"kernel.{msg['header']['msg_type']}".encode()
            self.iopub_thread.put(self.codec.serialize(msg, [topic]))
            return
        frames = self.codec.serialize(msg, idents)
        if channel == "stdin":  # from a cell (input()): user code, so SIGINT must wait
            with self.gate.shielded():
                send_frames(self.sockets.stdin, frames)
            return
        send_frames(self.sockets.shell if channel == "shell" else self.sockets.control, frames)

    def flush_iopub(self) -> None:
        self.iopub_thread.barrier()

    def schedule_stream_flush(self, delay: float, flush: Callable[[], None]) -> None:
        self.iopub_thread.schedule_flush(delay, flush)

    def wait_for_room(self) -> None:
        self.iopub_thread.wait_for_room()

    def shielded(self) -> contextlib.AbstractContextManager[None]:
        return self.gate.shielded()

    def drain_shell(self) -> list[Message]:
        pending: list[Message] = []
        while True:
            try:
                frames = self.sockets.shell.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return pending
            msg = self._parse(frames, "shell")
            if msg is not None:
                pending.append(msg)

    def next_stdin(self) -> Message:
        """Wait on the stdin socket (main thread) for the next message that passes the wire checks.

        Polls in short slices so that SIGINT (KeyboardInterrupt) and shutdown end the wait.
        """
        stdin = self.sockets.stdin
        while not self.stopping:
            if not stdin.poll(100):  # SIGINT raises here
                continue
            with self.gate.shielded():  # never leave half a multipart message behind
                frames = stdin.recv_multipart()
            msg = self._parse(frames, "stdin")
            if msg is not None:
                return msg
        raise EOFError("the kernel is shutting down")

    def drain_stdin(self) -> None:
        with self.gate.shielded():
            while self.sockets.stdin.poll(0):
                self.sockets.stdin.recv_multipart()

    def interrupt_main(self) -> None:
        """SIGINT to the main thread, then to what a cell started in our process group, as
        signal mode's ``killpg`` does (so ``subprocess.run`` ends at once). The main thread
        comes first: a child that ended first could let the cell finish as if not interrupted.
        """
        if self._main_thread_id is not None:
            signal.pthread_kill(self._main_thread_id, signal.SIGINT)
        interrupt_group_members()

    def stop(self) -> None:
        self.stopping = True
        self._main_wake.wake()
        if self._control is not None:
            self._control.wake.wake()

    # -- serving ------------------------------------------------------------------

    def stop_soon(self) -> None:
        """Stop serving from any thread or signal handler, interrupting a running cell."""
        self.stop()
        self.interrupt_main()  # a no-op unless user code is running (see InterruptGate)

    def start_iopub(self) -> None:
        """Start sending iopub messages (those queued before are held for the first subscriber)."""
        if not self.iopub_thread.is_alive():
            self.iopub_thread.start()

    def serve(self, core: Core) -> None:
        """Serve ``core``: start the control thread, then serve shell on the calling (main)
        thread until :meth:`stop`."""
        self._core = core
        self.start_iopub()
        self._control = ControlThread(self, core, self.parent_watch)
        self._control.start()
        try:
            self._serve_shell(core)
        finally:
            self.served.set()  # the control thread's watch of an orphaned kernel waits for this

    def receive_all(self, channel: str, core: Core) -> None:
        """Handle every request waiting on ``channel`` (called by the socket's owner thread)."""
        sock = self.sockets.shell if channel == "shell" else self.sockets.control
        while not self.stopping:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = self._parse(frames, channel)
            if msg is None:
                continue
            try:
                core.dispatch(channel, msg)
            except Exception:  # a kernel bug must not end the thread that owns this socket
                log.exception("unhandled error serving %s on %s", msg.get("msg_type"), channel)

    def _serve_shell(self, core: Core) -> None:
        """Between requests the user's asyncio loop (once a cell has made one) gets its turn, so
        tasks that cells started keep running while the kernel is idle: the poll also waits on
        the loop's selector, with a timeout that ends when the loop's next timer is due."""
        poller = zmq.Poller()
        poller.register(self.sockets.shell, zmq.POLLIN)
        poller.register(self._main_wake.read_fd, zmq.POLLIN)
        watched_loop = None
        idle_ms: int | None = None
        while not self.stopping:
            try:
                loop = core.event_loop()
                if loop is not watched_loop:
                    watched_loop = watch_loop(poller, watched_loop, loop)
                timeout = loop_timeout_ms(loop)
                if idle_ms is not None:
                    timeout = idle_ms if timeout is None else min(timeout, idle_ms)
                events = dict(poller.poll(timeout))
                self._main_wake.drain()
                if self.sockets.shell in events:
                    self._receive_shell_batch(core)
                if loop is not None and not loop.is_closed():
                    run_loop_once(loop)
                due = core.on_idle()
                idle_ms = None if due is None else ms_until(due, 0.0)
            except KeyboardInterrupt:
                continue  # an interrupt while idle is a no-op
            except Exception:  # a failing user task callback must not stop the kernel
                log.exception("error while running the asyncio loop between cells")

    def _receive_shell_batch(self, core: Core) -> None:
        self.iopub_thread.start_batch()
        try:
            self.receive_all("shell", core)
        finally:
            self.iopub_thread.end_batch()

    def close(self) -> None:
        """Send what is queued, stop the threads and close every socket."""
        self.stop()
        if self.iopub_thread.is_alive():
            self.iopub_thread.stop()
            self.iopub_thread.join(timeout=5)
        if self._control is not None:
            self._control.join(timeout=5)
        self.heartbeat.stop()
        self._rejects.flush()
        self.sockets.close()
        self._main_wake.close()

    # -- helpers ---------------------------------------------------------------------

    def _executing(self) -> bool:
        return self._core is not None and self._core.executing()

    def _welcome_frames(self, topic: bytes) -> list[bytes]:
        return self.codec.serialize(self.welcome(topic.decode("utf-8", "replace")), [topic])

    def _parse(self, frames: list[bytes], channel: str) -> Message | None:
        try:
            return self._codecs[channel].deserialize(frames)
        except WireRejected as err:
            self._rejects.record(f"{channel}:{err.reason}")
        except Exception:  # never let one odd message end the serving thread
            log.exception("could not decode a message on %s", channel)
            self._rejects.record(f"{channel}:undecodable")
        return None
