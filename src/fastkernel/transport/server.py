"""The kernel server: the sockets' owners wired together, and the main thread's shell loop.

The threading model (which thread owns which socket and does what) is in the transport
package's docstring, ``transport/__init__.py``: keep it true when changing anything here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from fastkernel.transport.subshells import ShellRouter, current_subshell, refuse_unknown
from fastkernel.wire import RejectLog, WireCodec, WireRejected

if TYPE_CHECKING:
    from fastkernel.transport.daplink import DapLink


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
        # The shell socket's owner: the main thread, or the router once subshells exist. The
        # lock is held by whichever thread uses the socket; the main thread polls it holding
        # the lock, so the router sets _takeover and wakes it before taking the lock.
        self.shell_lock = threading.Lock()
        self.routed = False
        self._takeover = False
        self._router: ShellRouter | None = None
        self._router_lock = threading.Lock()  # one router, made by the first create_subshell
        self._main_inbox: deque[list[bytes]] = deque()  # main-shell requests, in order

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
        if channel == "control":
            control = self._control
            if control is None or threading.current_thread() is control:
                send_frames(self.sockets.control, frames)
            else:  # the control worker's reply: the control thread sends it
                control.post(frames)
            return
        with self.shell_lock:
            if not self.routed:  # the main thread owns the socket and is the one calling
                send_frames(self.sockets.shell, frames)
                return
            router = self._router  # set before routed turns true, cleared with it (same lock)
        assert router is not None
        if threading.current_thread() is router:
            send_frames(self.sockets.shell, frames)
        else:
            router.post(frames)

    def flush_iopub(self) -> None:
        self.iopub_thread.barrier()

    def schedule_stream_flush(self, delay: float, flush: Callable[[], None]) -> None:
        self.iopub_thread.schedule_flush(delay, flush)

    def wait_for_room(self) -> None:
        self.iopub_thread.wait_for_room()

    def shielded(self) -> contextlib.AbstractContextManager[None]:
        return self.gate.shielded()

    def drain_shell(self) -> list[Message]:
        """The calling shell's queued requests: a subshell's queue, or the main shell's."""
        subshell = current_subshell()
        if subshell is not None:
            return subshell.drain()
        with self.shell_lock:
            if not self.routed:
                self._receive_into_inbox()
        queued, self._main_inbox = list(self._main_inbox), deque()
        return [msg for msg in (self.parse(frames, "shell") for frames in queued) if msg is not None]

    # -- subshells (control thread) ------------------------------------------------

    def create_subshell(self) -> str:
        """A new subshell's id; the first one starts the shell router (see subshells.py).

        Under the router lock, which hand_back_shell takes too: a router just started is not
        handed back (it has no subshell yet) before its first subshell exists.
        """
        with self._router_lock:
            return self._shell_router().create()

    def delete_subshell(self, subshell_id: str) -> None:
        """End ``subshell_id``'s thread; KeyError if there is no such subshell."""
        router = self._router
        if router is None:
            raise KeyError(subshell_id)
        router.delete(subshell_id)

    def list_subshells(self) -> list[str]:
        router = self._router
        return [] if router is None else router.ids()

    def open_debug_link(self, host: str, port: int, on_event: Callable[[dict[str, Any]], None]) -> DapLink:
        """(control thread, first ``initialize``) A link to debugpy's adapter and its reader thread."""
        from fastkernel.transport.daplink import DapLink

        return DapLink(host, port, on_event)

    def _shell_router(self) -> ShellRouter:
        """(holding _router_lock) The router, started if there is none. ``_router`` is set before
        the router takes the socket over (``routed``), so a sender that sees ``routed`` finds it."""
        if self._router is None:
            assert self._core is not None, "subshells are created once serving"
            router = ShellRouter(self, self._core)
            self._router = router
            router.start()
            if not router.taken.wait(10):
                self._router = None
                raise RuntimeError("the shell router could not take the shell socket over")
        return self._router

    def stop_subshells(self) -> None:
        """(shutdown) End the subshells and the control worker, answering their queued
        requests, then the router."""
        if self._control is not None:
            self._control.stop_worker()  # its replies go out through the control thread
        router = self._router
        if router is not None and router.is_alive():
            router.stop_all()  # their replies go out through the router, still running
            router.finish()

    def hand_back_shell(self, router: ShellRouter) -> bool:
        """(the router thread) Give the shell socket back to the main thread if no subshell is
        left (a create may have come meanwhile: then keep it). True if handed back."""
        with self._router_lock, self.shell_lock:
            if not router.unused():
                return False
            self.routed = self._takeover = False
            self._router = None
        self._main_wake.wake()  # it polls the socket itself again
        return True

    def take_over_shell(self) -> None:
        """(the router thread) Become the shell socket's owner."""
        self._takeover = True
        self._main_wake.wake()  # the main thread leaves its poll of the socket and the lock
        with self.shell_lock:
            self.routed = True

    def to_main(self, frames: list[bytes]) -> None:
        """(the router thread) A main-shell request: queue it for the main thread and wake it."""
        self._main_inbox.append(frames)
        self._main_wake.wake()

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
            msg = self.parse(frames, "stdin")
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

    @property
    def main_wake_fd(self) -> int:
        """A non-blocking fd whose writes wake the main thread's poll (``signal.set_wakeup_fd``)."""
        return self._main_wake.write_fd

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

    def dispatch_safely(self, channel: str, msg: Message, core: Core) -> None:
        try:
            core.dispatch(channel, msg)
        except Exception:  # a kernel bug must not end the thread that serves this channel
            log.exception("unhandled error serving %s on %s", msg.get("msg_type"), channel)

    def _receive_into_inbox(self) -> None:
        """(main thread, holding shell_lock, not routed) Move waiting shell requests to the inbox."""
        while True:
            try:
                self._main_inbox.append(self.sockets.shell.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return

    def _serve_inbox(self, core: Core) -> None:
        self.iopub_thread.start_batch()
        # The signal wakeup fd (app.py) wakes the idle poll; while requests run it is lent out,
        # so a library that sets its own (trio.run) finds none set and does not warn of a clash.
        wakeup_fd = signal.set_wakeup_fd(-1)
        try:
            while self._main_inbox and not self.stopping:
                msg = self.parse(self._main_inbox.popleft(), "shell")
                if msg is None:
                    continue
                subshell_id = msg["header"].get("subshell_id")
                if isinstance(subshell_id, str) and not self.routed:  # no subshell exists yet
                    refuse_unknown(core, msg, subshell_id)
                else:
                    self.dispatch_safely("shell", msg, core)
        finally:
            signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
            self.iopub_thread.end_batch()

    def _serve_shell(self, core: Core) -> None:
        """Between requests the user's asyncio loop (once a cell has made one) gets its turn, so
        tasks that cells started keep running while the kernel is idle: the poll also waits on
        the loop's selector, with a timeout that ends when the loop's next timer is due."""
        poller = zmq.Poller()
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
                self._poll_main(poller, 0 if self._main_inbox else timeout)
                self._main_wake.drain()
                if self._main_inbox:
                    self._serve_inbox(core)
                if loop is not None and not loop.is_closed():
                    run_loop_once(loop)
                due = core.on_idle()
                idle_ms = None if due is None else ms_until(due, 0.0)
            except KeyboardInterrupt:
                continue  # an interrupt while idle is a no-op
            except Exception:  # a failing user task callback must not stop the kernel
                log.exception("error while running the asyncio loop between cells")

    def _poll_main(self, poller: zmq.Poller, timeout: int | None) -> None:
        """Wait for work: on the shell socket too while the main thread owns it."""
        shell = self.sockets.shell
        with self.shell_lock:
            if not self.routed and not self._takeover:
                poller.register(shell, zmq.POLLIN)
                try:
                    if shell in dict(poller.poll(timeout)):
                        self._receive_into_inbox()
                finally:
                    poller.unregister(shell)
                return
        poller.poll(timeout)

    def close(self) -> None:
        """Send what is queued, stop the threads and close every socket."""
        self.stop()
        self.stop_subshells()
        if self.iopub_thread.is_alive():
            self.iopub_thread.stop()
            self.iopub_thread.join(timeout=5)
        if self._control is not None:
            self._control.join(timeout=5)
            if not self._control.is_alive():
                self._control.send_posted()  # worker replies posted as it ended: the socket is free
        self.heartbeat.stop()
        self._rejects.flush()
        self.sockets.close()
        self._main_wake.close()

    # -- helpers ---------------------------------------------------------------------

    def _executing(self) -> bool:
        return self._core is not None and self._core.executing()

    def _welcome_frames(self, topic: bytes) -> list[bytes]:
        return self.codec.serialize(self.welcome(topic.decode("utf-8", "replace")), [topic])

    def parse(self, frames: list[bytes], channel: str) -> Message | None:
        """The message ``frames`` carry, or None (rejected: counted and logged at a bounded rate)."""
        try:
            return self._codecs[channel].deserialize(frames)
        except WireRejected as err:
            self._rejects.record(f"{channel}:{err.reason}")
        except Exception:  # never let one odd message end the serving thread
            log.exception("could not decode a message on %s", channel)
            self._rejects.record(f"{channel}:undecodable")
        return None
