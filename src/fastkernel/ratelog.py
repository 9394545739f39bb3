"""One rate-limited log line: what the kernel logs about traffic that anyone can send fast.

A peer can send forged frames (wire.py) or malformed signed requests (kernel.py) as fast as
it likes: each is still refused or answered, but the log must not grow with them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any


class RateLimitedLog:
    """Logs at most one warning per ``interval`` seconds; the next one counts those left out.

    ``logger`` is anything with a ``warning(msg, *args)`` method (a ``logging.Logger``).
    The first event is logged at once, whatever the uptime.
    """

    def __init__(self, logger: Any, interval: float = 5.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -math.inf
        self._pending = 0  # events since the last line, the current one included

    def report(self, describe: Callable[[int], str]) -> None:
        """Count one event; log ``describe(events since the last line)`` if the interval is over."""
        self._pending += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.flush(describe)

    def warn(self, text: str) -> None:
        """``text``, with a count of the lines left out since the last one that was logged."""
        self.report(lambda n: text + (f" (and {n - 1} more since the last report)" if n > 1 else ""))

    def flush(self, describe: Callable[[int], str]) -> None:
        """Log the events not reported yet (at shutdown, so the last burst is not lost)."""
        if self._pending:
            self.logger.warning("%s", describe(self._pending))
            self._pending = 0
