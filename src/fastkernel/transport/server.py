"""Sockets and threads: with transport/fdcapture.py, the only code that starts threads.

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
                                            and ``on_idle`` work: writing the input history
                                            to SQLite (fastkernel/history.py), batched.
fastkernel-control      control             receives control requests (interrupt, shutdown,
                                            kernel_info, ...) and answers them, even while a
                                            cell runs on the main thread. Also checks once a
                                            second that the process that launched the kernel
                                            lives (fastkernel/lifecycle.py: JPY_PARENT_PID, or
                                            a change of parent) and stops the kernel when it
                                            is gone; if the main thread has not stopped
                                            ``ORPHAN_EXIT_S`` later, it ends the process.
fastkernel-iopub        iopub (XPUB)        sends every iopub message, in the order they
                                            were queued; answers each new subscription with
                                            ``iopub_welcome``; flushes coalesced stream
                                            output when its deadline comes.
fastkernel-heartbeat    hb, on its own      echoes heartbeats inside libzmq
                        zmq.Context         (``zmq.proxy_steerable``), so it answers while
                                            Python holds the GIL.
fastkernel-fdcapture    the read ends of    only with fd capture on (transport/fdcapture.py):
                        the fd 1 and fd 2   reads what subprocesses and C code write to fds
                        pipes               1 and 2 and hands it to the stream coalescer;
                                            answers drain barriers before each reply.
======================  ==================  ===============================================

While the main thread works through shell requests, producers queue iopub messages without
waking the iopub thread, which then polls every ``BATCH_LATENCY_MS`` and is woken when the burst
ends: each zmq frame send releases the GIL, and sending in step with the main thread made the
two threads trade the GIL dozens of times per request (about 30% of the kernel's CPU).

No socket is touched by any thread but its owner. Other threads hand iopub messages to the
iopub thread through a deque plus a wake-up pipe; messages are serialized and signed by the
thread that produces them, which keeps the iopub thread's work to sending frames.

Interrupts: SIGINT is handled on the main thread by :class:`InterruptGate`, which raises
KeyboardInterrupt only while user code runs, and holds it while user code is inside kernel
code that must not be cut in half (the stdin socket's multipart sends and receives in
``input()``); the control thread's ``interrupt_request`` signals the main thread first, then
the kernel's descendants in its process group (see docs/reliability.md).

Backpressure: the iopub socket never drops (``sndhwm`` 0), so output that a slow subscriber
has not taken yet waits in libzmq, in the kernel's memory. The iopub thread sends frames of
64 KiB and more uncopied and tracked (``MessageTracker``), and counts the bytes libzmq still
holds. Past ``IOPUB_QUEUE_LIMIT`` of them, a thread that writes output (the cell, its threads,
fd capture) waits in :meth:`IOPubThread.wait_for_room`, outside every lock, until subscribers
have taken half of it: a flood then runs at the pace of its slowest reader, with bounded
memory, and nothing is dropped. The control and iopub threads never wait. A subscriber that
takes nothing for ``IOPUB_STALL_S`` (a stopped process that keeps its connection) stops
holding writers back: a warning is logged and output queues in memory as before, so a dead
reader cannot hang a cell.
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
PARENT_POLL_MS = 1000
ORPHAN_EXIT_S = 3.0  # an orphaned kernel whose main thread does not stop (a cell ignores interrupts) exits
LOOP_FALLBACK_POLL_MS = 10
HELD_BEFORE_FIRST_SUBSCRIBER = 1000  # iopub messages kept for a frontend that subscribes late
BATCH_LATENCY_MS = 5  # longest an iopub message waits while the main thread is busy
IOPUB_QUEUE_LIMIT = 32 << 20  # bytes libzmq holds for slow subscribers before writers wait
IOPUB_STALL_S = 10.0  # a subscriber that takes nothing for this long no longer holds writers back
TRACK_POLL_MS = 5  # how often the iopub thread checks which tracked frames have gone out
_NEVER_WAIT = frozenset({"fastkernel-iopub", "fastkernel-control"})


_SNDMORE = int(zmq.SNDMORE)
_COPY_BELOW = 65536  # smaller frames are copied (cheaper than tracking); larger ones are not
try:  # the backend's send, without the sugar layer's per-call enum and option handling
    from zmq.backend import Socket as _BackendSocket

    _raw_send: Callable[..., Any] = _BackendSocket.send
except ImportError:  # pragma: no cover - every pyzmq has it; keep working if that changes
    _raw_send = zmq.Socket.send


def send_frames(sock: zmq.Socket, frames: list[Any]) -> None:
    """``sock.send_multipart(frames)`` at a quarter of its cost (3 us instead of 13 for 7 frames)."""
    last = len(frames) - 1
    for index, frame in enumerate(frames):
        _raw_send(sock, frame, _SNDMORE if index < last else 0, len(frame) < _COPY_BELOW)


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
        # True while a wake-up is in the pipe and not yet acted on: producers then skip the
        # write(2). The iopub thread clears it *before* draining the queue, so an item appended
        # after the clear either gets drained in that pass or wakes the thread again.
        self._wake_pending = False
        # Until a first frontend subscribes, messages are held (up to a bound) rather than
        # dropped by XPUB, so a client that connects iopub late still sees the first cell.
        self._held: list[list[bytes]] | None = []
        # While the main thread works through a burst of shell requests, producers do not wake
        # this thread per message: every frame send releases the GIL, so sending alongside the
        # main thread makes the two trade the GIL dozens of times per request. Queued messages
        # go out when the burst ends (kick) or, during a long cell, within BATCH_LATENCY_MS.
        self.batching = False
        self._sleeping = False  # the thread is in a poll without timeout: only a wake ends it
        self._flush_at: float | None = None
        self._stopping = False
        # Backpressure (see the module docstring): big frames handed to zmq and not yet sent.
        self._tracked: deque[tuple[Any, int]] = deque()  # (MessageTracker, bytes), oldest first
        self.inflight = 0  # their bytes; written by this thread, read by writers
        self.queue_limit = IOPUB_QUEUE_LIMIT
        self._room = threading.Condition()
        self._progress_at = time.monotonic()  # when a tracked frame last went out
        self._stall_warned = False

    def wait_for_room(self) -> None:
        """Hold a writer while more than ``queue_limit`` bytes wait for slow subscribers."""
        if self.inflight <= self.queue_limit or threading.current_thread().name in _NEVER_WAIT:
            return
        with self._room:
            while self.inflight > self.queue_limit // 2 and not self._stopping:
                if time.monotonic() - self._progress_at > IOPUB_STALL_S:
                    if not self._stall_warned:
                        self._stall_warned = True
                        log.warning(
                            "an iopub subscriber took no output for %.0f s: output now queues in "
                            "memory (%d MB waiting)",
                            IOPUB_STALL_S,
                            self.inflight >> 20,
                        )
                    return
                self._room.wait(0.1)

    def put(self, frames: list[bytes]) -> None:
        self._queue.append(frames)
        if not self.batching or self._sleeping:  # else: sent at the batch's end or within its latency
            self.kick()

    def barrier(self, timeout: float = 10.0) -> None:
        """Wait until everything queued before this call has been sent."""
        if threading.current_thread() is self or not self.is_alive():
            return
        done = threading.Event()
        self._queue.append(done)
        self.kick()
        if not done.wait(timeout):
            log.warning("iopub did not drain within %.0f s", timeout)

    def start_batch(self) -> None:
        # No wake here: the batch's first message wakes a sleeping thread (see put), which from
        # then on polls with the batch latency.
        self.batching = True

    def end_batch(self) -> None:
        self.batching = False
        self.kick()

    def kick(self) -> None:
        """Wake the thread now if anything is queued (the end of a batch, a barrier)."""
        if self._queue and not self._wake_pending:
            self._wake_pending = True
            self._wake.wake()

    def schedule_flush(self, delay: float) -> None:
        due = time.monotonic() + delay
        if self._flush_at is None or due < self._flush_at:
            self._flush_at = due
            self._wake.wake()

    def stop(self) -> None:
        self._stopping = True
        self._wake.wake()
        with self._room:
            self._room.notify_all()

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake.read_fd, zmq.POLLIN)
        while True:
            # Claim to sleep before reading ``batching``: a producer that starts a batch in
            # between then still wakes us (see put), so no message waits for the batch's end.
            self._sleeping = True
            timeout: int | None = BATCH_LATENCY_MS if self.batching else None
            if self._tracked:  # frames in flight: see when they go out, to let writers go on
                timeout = TRACK_POLL_MS if timeout is None else min(timeout, TRACK_POLL_MS)
            if self._flush_at is not None:
                until_flush = _ms_until(self._flush_at, time.monotonic())
                timeout = until_flush if timeout is None else min(timeout, until_flush)
            self._sleeping = timeout is None
            events = dict(poller.poll(timeout))
            self._sleeping = False
            if self.sock in events:
                self._welcome_subscribers()
            self._wake.drain()
            self._wake_pending = False
            if self._flush_at is not None and time.monotonic() >= self._flush_at:
                self._flush_at = None
                self._safely(self.on_flush_due)
            self._send_queued()
            self._release_sent()
            if self._stopping and not self._queue:
                break

    def _send_queued(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, threading.Event):
                item.set()
            elif self._held is not None:
                self._hold(item)
            else:
                self._send_tracked(item)

    def _send_tracked(self, frames: list[bytes]) -> None:
        """``send_frames``, tracking frames of ``_COPY_BELOW`` bytes and more until zmq sent them."""
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            flags = _SNDMORE if index < last else 0
            if len(frame) < _COPY_BELOW:
                _raw_send(self.sock, frame, flags, True)
                continue
            tracker = _raw_send(self.sock, frame, flags, False, True)
            if not self._tracked:
                self._progress_at = time.monotonic()
            self._tracked.append((tracker, len(frame)))
            self.inflight += len(frame)

    def _release_sent(self) -> None:
        released = False
        while self._tracked and self._tracked[0][0].done:
            self.inflight -= self._tracked.popleft()[1]
            released = True
        if released:
            self._progress_at = time.monotonic()
            self._stall_warned = False
            with self._room:
                self._room.notify_all()

    def _hold(self, frames: list[bytes]) -> None:
        assert self._held is not None
        if len(self._held) < HELD_BEFORE_FIRST_SUBSCRIBER:
            self._held.append(frames)
        else:  # nobody listens to iopub: stop holding, behave like plain PUB
            log.debug("no iopub subscriber yet: releasing %d held messages", len(self._held))
            self._held = None

    def _welcome_subscribers(self) -> None:
        while True:
            try:
                event = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":  # subscribe (XPUB_VERBOSE reports every one)
                send_frames(self.sock, self.make_welcome(event[1:]))
                self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held, None
        for frames in held or ():
            send_frames(self.sock, frames)

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
        # With a parent to watch, wake every second to see whether it is still there.
        watch = server.parent_watch
        check_at = time.monotonic() + PARENT_POLL_MS / 1000
        orphaned = False
        while not server.stopping:
            events = dict(poller.poll(_ms_until(check_at, time.monotonic()) if watch else None))
            self.wake.drain()
            if server.control in events:
                server.receive_all(server.control, "control")
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


def _loop_timeout_ms(loop: Any) -> int | None:
    """How long the idle poll may block without starving the asyncio loop ``loop``."""
    if loop is None or loop.is_closed():
        return None
    if getattr(loop, "_ready", None):  # callbacks waiting: do not block at all
        return 0
    scheduled = getattr(loop, "_scheduled", None)
    if scheduled is None:  # not a BaseEventLoop: poll it regularly instead
        return LOOP_FALLBACK_POLL_MS
    if not scheduled:
        return None  # only the selector (polled alongside) can wake the loop
    return _ms_until(scheduled[0].when(), loop.time())


def _ms_until(deadline: float, now: float) -> int:
    """Whole milliseconds from ``now`` to ``deadline``, rounded up so a poll does not wake early."""
    return max(0, int((deadline - now) * 1000) + 1)


def _run_loop_once(loop: Any) -> None:
    """One iteration of ``loop``: run what is ready, poll its selector without blocking."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def _answers(msg: Message, request_id: str, asked: list[bytes] | None) -> bool:
    """Whether ``msg`` is the input_reply to ``request_id``, sent to the zmq identity ``asked``.

    jupyter_client's ``KernelClient.input`` sends its reply without a parent header, so an
    unparented input_reply answers the outstanding request; a parented one must match it.
    Either way it must come from the frontend that was asked: its stdin socket carries the
    identity of its shell socket (the input_request could not have reached it otherwise),
    so another client's reply, even one that names the request, answers nothing.
    """
    parent_id = msg["parent_header"].get("msg_id") if isinstance(msg["parent_header"], dict) else None
    if asked is not None and msg.get("idents") != asked:
        return False
    return msg["msg_type"] == "input_reply" and parent_id in (None, "", request_id)


def _interrupt_group_members() -> None:
    """SIGINT to our descendants in our process group, when we lead it (Linux: /proc).

    Only when the group is ours (a frontend starts kernels in a session of their own), and
    only to processes we started: a kernel run in a shell pipeline (``... | tee log``) must
    not signal its neighbours in that job.
    """
    me = os.getpid()
    if not hasattr(os, "getpgrp") or os.getpgrp() != me or not os.path.isdir("/proc"):
        return
    parent: dict[int, int] = {}
    in_group: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                state, ppid, pgrp = stat.read().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        parent[int(entry)] = int(ppid)
        if int(pgrp) == me and state != b"Z":
            in_group.append(int(entry))
    for pid in in_group:
        ancestor, hops = parent.get(pid), 0
        while ancestor is not None and ancestor != me and hops < 64:
            ancestor, hops = parent.get(ancestor), hops + 1
        if ancestor == me:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)


_UNSHIELDED = contextlib.nullcontext()


class InterruptGate:
    """What SIGINT does on the main thread: raise KeyboardInterrupt in user code, nowhere else.

    The flag ``executing`` (the interpreter's, set only while user code is on the stack) is
    not enough on its own: user code calls kernel code that must not be cut in half, such as
    sending ``input_request`` frame by frame on the stdin socket (a half-sent multipart
    message would corrupt the next one). Such code runs under :meth:`shielded`; an interrupt
    that arrives meanwhile is held and raised when the shield is left, if user code is still
    running then. An interrupt while idle, or held until the cell ended, is dropped.
    """

    def __init__(self) -> None:
        self.executing: Callable[[], bool] = lambda: False
        self._main = threading.main_thread().ident  # signal handlers run there only
        self._depth = 0
        self._held = False

    def on_sigint(self, signum: int, frame: Any) -> None:
        if not self.executing():
            return  # idle, or kernel code between cells: a no-op
        if self._depth:
            self._held = True
            return
        raise KeyboardInterrupt

    def shielded(self) -> contextlib.AbstractContextManager[None]:
        """Hold SIGINT until the block ends (on the main thread; elsewhere it does nothing)."""
        return self if threading.get_ident() == self._main else _UNSHIELDED

    def __enter__(self) -> None:
        if not self._depth:
            self._held = False
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if not self._depth and self._held:
            self._held = False
            if self.executing() and exc[0] is None:
                raise KeyboardInterrupt


class KernelServer:
    """Binds the five sockets and runs the threads described in the module docstring."""

    def __init__(self, info: ConnectionInfo, codec: WireCodec, max_message_bytes: int) -> None:
        self.info = info
        self.codec = codec
        self.ctx = zmq.Context()
        self.stopping = False
        self.event_loop: Callable[[], Any] = lambda: None  # the user's asyncio loop, if any
        self.parent_watch: Any = None  # a lifecycle.ParentWatch: stop when it says the launcher is gone
        self.served = threading.Event()  # serve_forever has returned
        self.on_abandoned: Callable[[], None] = lambda: os._exit(1)  # orphaned, main thread stuck
        self.dispatch: Dispatch = lambda channel, msg: None
        self.make_welcome: Callable[[bytes], Message] | None = None
        # Main-thread work once waiting shell requests are handled (history writes); returns
        # seconds until it wants to run again, or None.
        self.on_idle: Callable[[], float | None] = lambda: None
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
        self.fd_capture: Any = None  # a transport.fdcapture.FdCapture when fds 1 and 2 are captured
        self.interrupts = InterruptGate()  # the SIGINT handler (app.py installs it)
        self._asked: list[bytes] | None = None  # the identity the last input_request went to

    # -- Outlet (see fastkernel.kernel.Outlet) --------------------------------

    def send(self, channel: str, msg: Message, idents: list[bytes] | None = None) -> None:
        if channel == "iopub":
            topic = f"kernel.{msg['header']['msg_type']}".encode()
            self.iopub_thread.put(self.codec.serialize(msg, [topic]))
            return
        if channel == "stdin":  # from a cell (input()): user code, so SIGINT must wait
            with self.interrupts.shielded():
                self._asked = list(idents) if idents is not None else None
                send_frames(self.stdin, self.codec.serialize(msg, idents))
            return
        sock = {"shell": self.shell, "control": self.control}[channel]
        send_frames(sock, self.codec.serialize(msg, idents))

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
            if not self.stdin.poll(100):  # SIGINT raises here
                continue
            with self.interrupts.shielded():  # never leave half a multipart message behind
                frames = self.stdin.recv_multipart()
            msg = self._parse(frames, "stdin")
            if msg is not None and _answers(msg, request_id, self._asked):
                return msg
            log.debug("ignoring a stdin message that does not answer the prompt: %s", msg and msg["msg_type"])
        raise EOFError("the kernel is shutting down")

    def drain_stdin(self) -> None:
        """Drop stdin messages left over from earlier prompts before asking again."""
        with self.interrupts.shielded():
            while self.stdin.poll(0):
                self.stdin.recv_multipart()

    def interrupt_main(self) -> None:
        """SIGINT to the main thread, then to what a cell started in our process group, as
        signal mode's ``killpg`` does (so ``subprocess.run`` ends at once). The main thread
        comes first: a child that ended first could let the cell finish as if not interrupted.
        """
        if self._main_thread_id is not None:
            signal.pthread_kill(self._main_thread_id, signal.SIGINT)
        _interrupt_group_members()

    def stop_soon(self) -> None:
        """Stop serving from any thread or signal handler, interrupting a running cell."""
        self.stop()
        self.interrupt_main()  # a no-op unless user code is running (see InterruptGate)

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
        except Exception:  # never let one odd message end the serving thread
            log.exception("could not decode a message on %s", channel)
            self._rejects.record(f"{channel}:undecodable")
        return None

    def receive_all(self, sock: zmq.Socket, channel: str) -> None:
        """Handle every request waiting on ``sock`` (called by its owner thread)."""
        while not self.stopping:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = self._parse(frames, channel)
            if msg is None:
                continue
            try:
                self.dispatch(channel, msg)
            except Exception:  # a kernel bug must not end the thread that owns this socket
                log.exception("unhandled error serving %s on %s", msg.get("msg_type"), channel)

    def _receive_shell_batch(self) -> None:
        self.iopub_thread.start_batch()
        try:
            self.receive_all(self.shell, "shell")
        finally:
            self.iopub_thread.end_batch()

    def start_threads(self) -> None:
        if self.fd_capture is not None:
            self.fd_capture.start()
        self.heartbeat.start()
        self.iopub_thread.start()
        self.control_thread.start()

    def serve_forever(self) -> None:
        """Serve shell requests on the calling (main) thread until :meth:`stop`.

        Between requests the user's asyncio loop (once a cell has made one) gets its turn, so
        tasks that cells started keep running while the kernel is idle: the poll also waits on
        the loop's selector, with a timeout that ends when the loop's next timer is due.
        """
        try:
            self._serve_shell()
        finally:
            self.served.set()  # the control thread's watch of an orphaned kernel waits for this

    def _serve_shell(self) -> None:
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self._main_wake.read_fd, zmq.POLLIN)
        watched_loop: Any = None
        idle_ms: int | None = None
        while not self.stopping:
            try:
                loop = self.event_loop()
                if loop is not watched_loop:
                    watched_loop = self._watch_loop(poller, watched_loop, loop)
                timeout = _loop_timeout_ms(loop)
                if idle_ms is not None:
                    timeout = idle_ms if timeout is None else min(timeout, idle_ms)
                events = dict(poller.poll(timeout))
                self._main_wake.drain()
                if self.shell in events:
                    self._receive_shell_batch()
                if loop is not None and not loop.is_closed():
                    _run_loop_once(loop)
                due = self.on_idle()
                idle_ms = None if due is None else _ms_until(due, 0.0)
            except KeyboardInterrupt:
                continue  # an interrupt while idle is a no-op
            except Exception:  # a failing user task callback must not stop the kernel
                log.exception("error while running the asyncio loop between cells")

    @staticmethod
    def _watch_loop(poller: zmq.Poller, old: Any, new: Any) -> Any:
        for loop, register in ((old, False), (new, True)):
            selector = getattr(loop, "_selector", None)  # an epoll/kqueue/poll object: pollable
            if selector is None or not hasattr(selector, "fileno"):
                continue
            if register:
                poller.register(selector.fileno(), zmq.POLLIN)
            else:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    poller.unregister(selector.fileno())
        return new

    def close(self) -> None:
        """Send what is queued, stop the threads and close every socket."""
        self.stop()
        if self.fd_capture is not None:
            self.fd_capture.stop()  # fds 1 and 2 back; what was left in the pipes is queued
        self.iopub_thread.stop()
        self.iopub_thread.join(timeout=5)
        self.control_thread.join(timeout=5)
        self.heartbeat.stop()
        self._rejects.flush()
        for sock in (self.shell, self.control, self.stdin, self.iopub):
            sock.close(linger=1000)
        self.ctx.term()
        self._main_wake.close()
