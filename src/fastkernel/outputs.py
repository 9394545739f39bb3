"""Coalescing of stdout/stderr writes into few, ordered, bounded ``stream`` messages.

Writes from any thread append to one ordered list of segments under a lock, so the true
order across stdout and stderr is kept. The first write after a flush asks the transport
for a flush ``interval`` seconds later; the kernel core also flushes before it publishes
anything else for the same request and before every reply. A program that writes and
flushes in a tight loop therefore produces a few messages per second, not one per write.

Each write goes to the cell named by the output target at write time (see
:mod:`fastkernel.interpreter.streams`); this module re-exports the user-facing part of that
API: ``from fastkernel.outputs import output_to, output_target, CURRENT_CELL, DISCARD``.

No text is ever dropped silently: a message carries at most ``max_message`` characters
(longer text is split), and with ``output_limit`` set, a cell's output past the limit is
replaced by a line that says how many characters were left out, between its head and tail.

Message rate: each run of writes to one stream is a message, so output that switches between
stdout and stderr on every write would send a message per write: tens of thousands a second,
past jupyter_server's ``iopub_msg_rate_limit`` (1,000/s), which then drops output. A token
bucket of ``max_rate`` messages a second (with a burst of as many) bounds that: a flush that
would need more messages than the bucket holds sends one message per (cell, stream) instead,
so the order within each stream is kept and only the interleaving of stdout and stderr inside
that flush (at most ``interval`` seconds of output) is lost. Nothing is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from fastkernel.interpreter.streams import (
    CURRENT_CELL,
    DISCARD,
    OUTPUT_TARGET,
    inherit_output_target_in_threads,
    output_target,
    output_to,
)

__all__ = ["CURRENT_CELL", "DISCARD", "StreamCoalescer", "output_target", "output_to"]

Publish = Callable[[str, str, Any], None]  # (stream name, text, parent message)
Schedule = Callable[[float], None]  # ask for flush() after this many seconds

DEFAULT_INTERVAL = 0.05
DEFAULT_MAX_PENDING = 1 << 20  # flush at once past this many characters
DEFAULT_MAX_MESSAGE = 1 << 20  # characters per stream message; longer text is split
DEFAULT_MAX_RATE = 300  # stream messages a second (and burst) before a flush is merged per stream
_get_target = OUTPUT_TARGET.get  # bound once: write() is the hottest path of a printing cell


def _nothing() -> None:
    pass


ELIDED = "[... {:,} characters elided by fastkernel (output_limit) ...]\n"


def split_text(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of at most ``size`` characters, cut after a newline where one is near."""
    size = max(size, 1)
    start = 0
    while len(text) - start > size:
        end = start + size
        newline = text.rfind("\n", start + size // 2, end)
        if newline != -1:
            end = newline + 1
        yield text[start:end]
        start = end
    yield text[start:]


class _Clip:
    """One cell's ``output_limit`` bookkeeping: head shown as it comes, bounded tail held back."""

    def __init__(self, parent: Any, limit: int) -> None:
        self.parent = parent
        self.head_room = limit - limit // 2
        self.tail_room = limit // 2
        self.tail: deque[tuple[str, str]] = deque()
        self.tail_len = 0
        self.elided = 0

    def take(self, name: str, text: str) -> str:
        """The part of ``text`` to show now; the rest joins the held-back tail."""
        shown = text[: max(self.head_room, 0)]
        self.head_room -= len(shown)
        if len(shown) < len(text):
            self._hold(name, text[len(shown) :])
        return shown

    def _hold(self, name: str, text: str) -> None:
        self.tail.append((name, text))
        self.tail_len += len(text)
        while self.tail_len > self.tail_room:  # drop from the front: the tail keeps the newest
            first_name, first = self.tail[0]
            excess = self.tail_len - self.tail_room
            if len(first) <= excess:
                self.tail.popleft()
                cut = len(first)
            else:
                self.tail[0] = (first_name, first[excess:])
                cut = excess
            self.tail_len -= cut
            self.elided += cut


def _per_stream(segments: list[tuple[Any, str, list[str]]]) -> list[tuple[Any, str, list[str]]]:
    """``segments`` joined per (parent, stream), in order of first appearance."""
    merged: dict[tuple[int, str], tuple[Any, str, list[str]]] = {}
    for parent, name, chunks in segments:
        key = (id(parent), name)
        if key in merged:
            merged[key][2].extend(chunks)
        else:
            merged[key] = (parent, name, list(chunks))
    return list(merged.values())


class StreamCoalescer:
    """Ordered buffer of (parent, stream name, text) segments with timed flushing."""

    def __init__(
        self,
        publish: Publish,
        schedule: Schedule,
        interval: float = DEFAULT_INTERVAL,
        max_pending: int = DEFAULT_MAX_PENDING,
        *,
        max_message: int = DEFAULT_MAX_MESSAGE,
        max_rate: int = DEFAULT_MAX_RATE,
        output_limit: int = 0,
        wait_for_room: Callable[[], None] = _nothing,
        shielded: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self._publish = publish
        self._schedule = schedule
        self.interval = interval
        self.max_pending = max_pending
        self.max_message = max_message
        self.output_limit = output_limit  # characters per cell; 0 means no limit
        self.max_rate = max_rate  # messages a second before flushes merge per stream; 0: no bound
        self._tokens = float(max_rate)
        self._refilled = time.monotonic()
        # Called, outside the lock, after a write that sent output: the transport holds the
        # writer there while slow subscribers lag too far behind (backpressure).
        self.wait_for_room = wait_for_room
        # Entered around publishing in flush(): the transport's InterruptGate.shielded, so an
        # interrupt of the cell that flushes cannot drop the segments already taken off.
        self.shielded = shielded
        self.parent: Any = None  # the cell that CURRENT_CELL output is attributed to
        # Barriers run by sync(): each returns once output written elsewhere (file
        # descriptors 1 and 2) before the call has been handed to write().
        self.sources: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self._segments: list[tuple[Any, str, list[str]]] = []
        self._pending = 0
        self._clip: _Clip | None = None
        inherit_output_target_in_threads()  # once: threads a cell starts write to that cell

    def add_source(self, drain: Callable[[], None]) -> None:
        """Another source of output (fd capture): ``drain`` is run by :meth:`sync`."""
        self.sources.append(drain)

    def write(self, name: str, text: str) -> None:
        """Queue ``text`` for the cell named by the output target of the calling context."""
        target = _get_target()
        if target is CURRENT_CELL:
            parent = self.parent
        elif target is DISCARD:
            return
        elif callable(target):
            with output_to(CURRENT_CELL):  # so that a target that prints cannot recurse
                target(name, text)
            return
        else:
            parent = target
        with self._lock:
            clip = self._clip
            if clip is not None and parent is clip.parent:
                text = clip.take(name, text)
                if not text:
                    return
            self._append(parent, name, text)
        if not self._pending:  # this write sent the pending output
            self.wait_for_room()

    def _append(self, parent: Any, name: str, text: str) -> None:
        if self._segments and self._segments[-1][0] is parent and self._segments[-1][1] == name:
            self._segments[-1][2].append(text)
        else:
            if not self._segments:
                self._schedule(self.interval)
            self._segments.append((parent, name, [text]))
        self._pending += len(text)
        if self._pending >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        """Publish everything pending, in order. Safe to call from any thread."""
        with self.shielded(), self._lock:
            segments, self._segments, self._pending = self._segments, [], 0
            if len(segments) > 2 and self.max_rate > 0 and not self._spend(len(segments)):
                segments = _per_stream(segments)
                self._tokens = max(0.0, self._tokens - len(segments))
            # Publishing under the lock keeps messages in write order across threads.
            for parent, name, chunks in segments:
                for piece in split_text("".join(chunks), self.max_message):
                    self._publish(name, piece, parent)

    def _spend(self, messages: int) -> bool:
        """Take ``messages`` from the rate bucket if it holds that many (see the module docstring)."""
        now = time.monotonic()
        rate = self.max_rate
        self._tokens = min(float(rate), self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if messages > self._tokens:
            return False
        self._tokens -= messages
        return True

    def sync(self) -> None:
        """Take in output waiting in the other sources (fd capture), then flush.

        Never call it with the lock held or from a source's own thread: a source hands its
        output to :meth:`write`, which takes the lock.
        """
        for drain in self.sources:
            drain()
        self.flush()

    @contextmanager
    def cell(self, parent: Any, attribute: bool = True) -> Iterator[None]:
        """Attribute output to ``parent`` while a cell runs, and to its threads and tasks for good.

        On the way out, output still in the other sources is taken in and, if the cell went
        past ``output_limit``, the elision line and the kept tail are published. With
        ``attribute`` false (a subshell's cell, beside the main shell's), ``CURRENT_CELL``
        output and ``output_limit`` stay the main shell's.
        """
        if not attribute:
            try:
                with output_to(parent):
                    yield
            finally:
                self.sync()
            return
        with self._lock:
            self.parent = parent
            self._clip = _Clip(parent, self.output_limit) if self.output_limit > 0 else None
        try:
            with output_to(parent):
                yield
        finally:
            self.sync()
            self._end_clip()

    def _end_clip(self) -> None:
        with self._lock:
            clip, self._clip = self._clip, None
            if clip is None or not clip.tail:
                return
            if clip.elided:
                self._append(clip.parent, "stderr", ELIDED.format(clip.elided))
            for name, text in clip.tail:  # held back in case more came; the cell is over now
                self._append(clip.parent, name, text)
            self.flush()
