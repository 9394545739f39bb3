"""sys.stdout / sys.stderr replacements that hand every write to a sink callback.

The sink (provided by the kernel core) coalesces and publishes; this module only turns
file-like calls into ``sink(name, text)`` calls and knows nothing of messages.
"""

from __future__ import annotations

import io
from collections.abc import Callable

Sink = Callable[[str, str], None]


class KernelStream(io.TextIOBase):
    """A text stream named ``stdout`` or ``stderr`` whose writes go to ``sink``."""

    def __init__(self, name: str, sink: Sink, original: io.TextIOBase | None = None) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self._sink = sink
        self._original = original

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._sink(self.name, text)
        return len(text)

    def writelines(self, lines) -> None:  # type: ignore[override]
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        # Deliberately no immediate send: the sink coalesces, so a program that
        # flushes after every write cannot flood the frontends.
        pass

    def fileno(self) -> int:
        raise io.UnsupportedOperation("kernel streams have no file descriptor")
