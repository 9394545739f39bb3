"""Coalescing of stdout/stderr writes into few, ordered ``stream`` messages.

Writes from any thread append to one ordered list of segments under a lock, so the true
order across stdout and stderr is kept. The first write after a flush asks the transport
for a flush ``interval`` seconds later; the kernel core also flushes before it publishes
anything else for the same request and before every reply. A program that writes and
flushes in a tight loop therefore produces a few messages per second, not one per write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Publish = Callable[[str, str, Any], None]  # (stream name, text, parent message)
Schedule = Callable[[float], None]  # ask for flush() after this many seconds

DEFAULT_INTERVAL = 0.05
DEFAULT_MAX_PENDING = 1 << 20  # flush at once past this many characters


class StreamCoalescer:
    """Ordered buffer of (parent, stream name, text) segments with timed flushing."""

    def __init__(
        self,
        publish: Publish,
        schedule: Schedule,
        interval: float = DEFAULT_INTERVAL,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._publish = publish
        self._schedule = schedule
        self.interval = interval
        self.max_pending = max_pending
        self.parent: Any = None  # the request that output is currently attributed to
        self._lock = threading.RLock()
        self._segments: list[tuple[Any, str, list[str]]] = []
        self._pending = 0

    def write(self, name: str, text: str) -> None:
        with self._lock:
            parent = self.parent
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
        with self._lock:
            segments, self._segments, self._pending = self._segments, [], 0
            # Publishing under the lock keeps messages in write order across threads.
            for parent, name, chunks in segments:
                self._publish(name, "".join(chunks), parent)
