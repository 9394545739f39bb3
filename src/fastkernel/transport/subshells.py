"""Subshells (JEP 91): each a thread with its own queue, fed by the shell socket's one owner.

While no subshell exists, the main thread owns the shell socket and reads it itself, as a
kernel without subshells does (no extra thread hop on the main shell's round trip). Once the
last subshell is deleted and its thread has ended, the router hands the socket back and ends. The first
``create_subshell_request`` starts the :class:`ShellRouter` thread, which takes the socket over
(``KernelServer.take_over_shell``: at once if the main thread is running a cell, else as soon as
its poll wakes) and from then on routes each request by its header's ``subshell_id``: to the
main thread's inbox, to a subshell's queue, or, for an id that names no subshell, straight to
an error reply. Replies from the main thread and the subshells go back through the router's
outbox, so the socket keeps one owner.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import zmq

from fastkernel.interfaces import Core
from fastkernel.logs import log
from fastkernel.messages import Message
from fastkernel.transport.frames import WakePipe, send_frames
from fastkernel.transport.threadmarks import hide_from_debugger
from fastkernel.wire import peek_subshell_id

if TYPE_CHECKING:
    from fastkernel.transport.server import KernelServer

Frames = list[bytes]
JOIN_S = 2.0  # how long deleting an idle subshell waits for its thread to end


class SubshellThread(threading.Thread):
    """Runs one subshell's requests in order, concurrently with the main shell and the others."""

    channel = "shell"  # where its requests came from and its replies go

    def __init__(
        self, subshell_id: str, server: KernelServer, core: Core, on_exit: Callable[[], None]
    ) -> None:
        super().__init__(name=f"fastkernel-subshell-{subshell_id[:8]}", daemon=True)
        self.subshell_id = subshell_id
        self.server = server
        self.core = core
        self.on_exit = on_exit
        self.busy = False
        self.done = False
        self._queue: deque[Frames | Message] = deque()  # frames, or messages parsed already
        self._ready = threading.Condition()
        self._stopping = False

    def put(self, request: Frames | Message) -> bool:
        """Queue a request; False once the subshell is being deleted (the caller answers it)."""
        with self._ready:
            if self._stopping:
                return False
            self._queue.append(request)
            self._ready.notify()
            return True

    def stop(self) -> None:
        """End after the running request; the queued ones get error replies."""
        with self._ready:
            self._stopping = True
            self._ready.notify()

    def end(self, timeout: float) -> None:
        """(shutdown) Stop, interrupt the user code this thread runs, and wait up to ``timeout``
        for the thread to end. Pure-Python code stops at once, a blocking call when it returns.

        A request may be between its execute_input and its user code: the KeyboardInterrupt is
        raised once user code runs, and only once, so it never lands in the kernel's handling
        of the first one.
        """
        self.stop()
        deadline = time.monotonic() + timeout
        interrupted = False
        while self.is_alive() and time.monotonic() < deadline:
            if not interrupted and self.ident is not None and self.core.executing(self.ident):
                raise_in_thread(self.ident, KeyboardInterrupt)
                interrupted = True
            self.join(0.02)

    def drain(self) -> list[Message]:
        """Queued requests, taken off the queue (stop_on_error: abort them)."""
        with self._ready:
            queued, self._queue = list(self._queue), deque()
        return [msg for msg in map(self._parse, queued) if msg is not None]

    def run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if self._stopping:
                    break
                frames = self._queue.popleft()
                self.busy = True
            msg = self._parse(frames)
            try:
                if msg is not None:
                    self.server.dispatch_safely(self.channel, msg, self.core)
            except KeyboardInterrupt:  # an interrupt at shutdown that landed outside user code
                log.debug("subshell %s interrupted between requests", self.subshell_id)
            self.busy = False
        for msg in self.drain():
            self.core.refuse(msg, *self.refusal(), channel=self.channel)
        self.done = True
        self.on_exit()

    def refusal(self) -> tuple[str, str]:
        """The error (ename, evalue) that requests still queued at the end are answered with."""
        return "SubshellDeleted", f"subshell {self.subshell_id} was deleted"

    def _parse(self, request: Frames | Message) -> Message | None:
        return request if isinstance(request, dict) else self.server.parse(request, self.channel)


class ControlWorker(SubshellThread):
    """Runs the requests on control that run user code (execute_request, as ipykernel serves
    it there too), in order, so the control thread itself keeps answering interrupts and
    shutdowns meanwhile. Like a subshell it shares the namespace, and SIGINT does not reach it."""

    channel = "control"

    def __init__(self, server: KernelServer, core: Core) -> None:
        super().__init__("control", server, core, on_exit=lambda: None)
        self.name = "fastkernel-control-worker"

    def refusal(self) -> tuple[str, str]:
        return "KernelShuttingDown", "the kernel stopped before running this control request"


class ShellRouter(threading.Thread):
    """Owns the shell socket once subshells exist: routes requests in, sends replies out."""

    def __init__(self, server: KernelServer, core: Core) -> None:
        super().__init__(name="fastkernel-shell", daemon=True)
        hide_from_debugger(self)  # it must keep serving while a cell is stopped
        self.server = server
        self.core = core
        self.wake = WakePipe()
        self.taken = threading.Event()  # the socket is ours
        self._outbox: deque[Frames] = deque()
        self._subshells: dict[str, SubshellThread] = {}
        self._threads: list[SubshellThread] = []  # every one started, deleted ones still running too
        self._lock = threading.Lock()  # the subshell table: changed on control, read here
        self._finished = False

    # -- the subshell table (control thread) ---------------------------------------

    def create(self) -> str:
        subshell_id = str(uuid.uuid4())
        thread = SubshellThread(subshell_id, self.server, self.core, self.wake.wake)
        with self._lock:
            self._subshells[subshell_id] = thread
            self._threads = [t for t in self._threads if not t.done] + [thread]
        thread.start()
        return subshell_id

    def delete(self, subshell_id: str) -> None:
        """Stop ``subshell_id`` (KeyError if there is none); wait for its thread if it is idle."""
        with self._lock:
            thread = self._subshells.pop(subshell_id)
        thread.stop()
        if not thread.busy:
            thread.join(JOIN_S)

    def unused(self) -> bool:
        """No subshell left, and none still running or with replies to send: hand the socket back."""
        with self._lock:
            return not self._subshells and all(t.done for t in self._threads) and not self._outbox

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._subshells)

    def find(self, subshell_id: str) -> SubshellThread | None:
        with self._lock:
            return self._subshells.get(subshell_id)

    def stop_all(self) -> None:
        """(shutdown) End every subshell: running user code is interrupted, queued requests refused."""
        with self._lock:
            threads, self._subshells = list(self._subshells.values()), {}
        for thread in threads:
            thread.stop()
        for thread in threads:
            thread.end(JOIN_S)

    # -- the socket (this thread) ------------------------------------------------------

    def finish(self) -> None:
        """Stop routing, once everything posted so far has been sent."""
        self._finished = True
        self.wake.wake()
        self.join(timeout=5)

    def post(self, frames: Frames) -> None:
        """Send ``frames`` on the shell socket from this thread (any thread may call it)."""
        self._outbox.append(frames)
        self.wake.wake()

    def run(self) -> None:
        server = self.server
        server.take_over_shell()
        self.taken.set()
        shell = server.sockets.shell
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(self.wake.read_fd, zmq.POLLIN)
        while not self._finished:
            events = dict(poller.poll())
            self.wake.drain()
            if shell in events:
                self._route_waiting(shell)
            self._send_posted(shell)
            if self.unused() and server.hand_back_shell(self):
                return  # the main thread owns the socket again (see the module docstring)
        self._send_posted(shell)  # replies made before the stop (the shutdown's own, say)

    def _route_waiting(self, shell: zmq.Socket) -> None:  # type: ignore[type-arg]
        while True:
            try:
                frames = shell.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._route(frames)

    def _route(self, frames: Frames) -> None:
        subshell_id = peek_subshell_id(frames)
        if subshell_id is None:
            self.server.to_main(frames)
            return
        thread = self.find(subshell_id)
        if thread is not None and thread.put(frames):
            return
        msg = self.server.parse(frames, "shell")
        if msg is not None:
            refuse_unknown(self.core, msg, subshell_id)

    def _send_posted(self, shell: zmq.Socket) -> None:  # type: ignore[type-arg]
        while self._outbox:
            send_frames(shell, self._outbox.popleft())


def refuse_unknown(core: Core, msg: Message, subshell_id: str) -> None:
    log.debug("request for unknown subshell %s", subshell_id)
    core.refuse(msg, "UnknownSubshell", f"there is no subshell {subshell_id!r}")


def raise_in_thread(thread_id: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in the thread ``thread_id`` at its next bytecode (CPython's async exception)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


def current_subshell() -> SubshellThread | None:
    """The subshell whose thread calls this, if any."""
    thread = threading.current_thread()
    return thread if isinstance(thread, SubshellThread) else None
