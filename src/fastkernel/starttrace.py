"""Timestamps of the start path, for ``make bench``'s start-up breakdown.

With ``FASTKERNEL_START_TRACE=FILE`` in the environment, the kernel notes the wall-clock time
of each step of its start (:func:`mark`) and writes them to FILE as JSON once its runtime is
built (:func:`write`). Without it, :func:`mark` does nothing.
"""

from __future__ import annotations

import os
import sys
import time

_PATH = os.environ.get("FASTKERNEL_START_TRACE")
_marks: dict[str, float] = {}


def mark(step: str) -> None:
    """Note that ``step`` is done now (the first time only).

    The step is also written to the real stderr, so that a ``python -X importtime`` log,
    written there as modules load, shows which imports came before which step.
    """
    if _PATH and step not in _marks:
        _marks[step] = time.time()
        if sys.__stderr__ is not None:
            sys.__stderr__.write(f"fastkernel start: {step}\n")


def write() -> None:
    """Write the marks to the trace file (once: later calls do nothing)."""
    global _PATH
    if not _PATH:
        return
    import json

    with open(_PATH, "w", encoding="utf-8") as f:
        json.dump(_marks, f)
    _PATH = None
