"""The iopub thread: the one owner of the iopub XPUB socket (see transport/__init__.py).

While the main thread works through shell requests, producers queue iopub messages without
waking this thread, which then polls every ``BATCH_LATENCY_MS`` and is woken when the burst
ends: each zmq frame send releases the GIL, and sending in step with the main thread made the
two threads trade the GIL dozens of times per request (about 30% of the kernel's CPU).

Other threads hand iopub messages over through a deque plus a wake-up pipe; messages are
serialized and signed by the thread that produces them, which keeps this thread's work to
sending frames.

Backpressure: the iopub socket never drops (``sndhwm`` 0), so output that a slow subscriber
has not taken yet waits in libzmq, in the kernel's memory. This thread sends frames of
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

import threading
import time
from collections import deque
from collections.abc import Callable
from threading import get_ident
from typing import Any

import zmq

from fastkernel.logs import log
from fastkernel.transport.frames import COPY_BELOW, SNDMORE, WakePipe, ms_until, raw_send, send_frames
from fastkernel.transport.threadmarks import hide_from_debugger

HELD_BEFORE_FIRST_SUBSCRIBER = 1000  # iopub messages kept for a frontend that subscribes late
BATCH_LATENCY_MS = 5  # longest an iopub message waits while the main thread is busy
IOPUB_QUEUE_LIMIT = 32 << 20  # bytes libzmq holds for slow subscribers before writers wait
IOPUB_STALL_S = 10.0  # a subscriber that takes nothing for this long no longer holds writers back
TRACK_POLL_MS = 5  # how often the iopub thread checks which tracked frames have gone out
_NEVER_WAIT = frozenset({"fastkernel-iopub", "fastkernel-control"})


def _nothing() -> None:
    pass


class IOPubThread(threading.Thread):
    """Owns the iopub XPUB socket; everything else queues frames for it."""

    def __init__(self, sock: zmq.Socket[Any], welcome: Callable[[bytes], list[bytes]]) -> None:
        super().__init__(name="fastkernel-iopub", daemon=True)
        hide_from_debugger(self)  # it must keep serving while a cell is stopped
        self.sock = sock
        self.welcome = welcome  # the frames of iopub_welcome for a subscription's topic
        self._on_flush_due: Callable[[], None] = _nothing
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
        self._batcher: int | None = None  # the thread whose messages are batched (the main thread)
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
        # Batched (sent at the batch's end or within its latency) only when the batching thread
        # produced it: a subshell's or the control thread's message goes out at once.
        if not self.batching or self._sleeping or get_ident() != self._batcher:
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
        self._batcher = get_ident()
        self.batching = True

    def end_batch(self) -> None:
        self.batching = False
        self.kick()

    def kick(self) -> None:
        """Wake the thread now if anything is queued (the end of a batch, a barrier)."""
        if self._queue and not self._wake_pending:
            self._wake_pending = True
            self._wake.wake()

    def schedule_flush(self, delay: float, flush: Callable[[], None]) -> None:
        """Call ``flush`` on this thread ``delay`` seconds from now (or at an earlier request's time)."""
        due = time.monotonic() + delay
        self._on_flush_due = flush
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
                until_flush = ms_until(self._flush_at, time.monotonic())
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
                self._safely(self._on_flush_due)
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
        """``send_frames``, tracking frames of ``COPY_BELOW`` bytes and more until zmq sent them."""
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            flags = SNDMORE if index < last else 0
            if len(frame) < COPY_BELOW:
                raw_send(self.sock, frame, flags, True)
                continue
            tracker = raw_send(self.sock, frame, flags, False, True)
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
                send_frames(self.sock, self.welcome(event[1:]))
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
