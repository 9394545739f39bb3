"""Where fastkernel's start goes: its own start-path timestamps, and imports before the first reply.

The kernel writes the wall-clock time of each step of its start to ``FASTKERNEL_START_TRACE``
(src/fastkernel/starttrace.py). Each step here is the median over several starts of the time
from the previous step (the first from the client's spawn), so the steps add up to about the
time to the first reply. ``-X importtime`` attributes the imports made before the first reply
(its log carries a line per step), which it inflates.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from client import KernelProcess
from jupyter_client.kernelspec import KernelSpec
from measures import import_profile

# (mark written by the kernel, what the interval that ends there holds)
STEPS = [
    ("main", "interpreter start, `-m fastkernel`, `import fastkernel.app`"),
    ("settings", "settings (`-f FILE`, no config file: without traitlets)"),
    ("imports", "imports of the start path (zmq, wire, core, transport)"),
    ("bound", "connection file read, five sockets bound, heartbeat started"),
    ("serving", "core and server built, iopub thread started"),
    ("first_request", "waiting for the client's request to arrive"),
    ("first_reply", "kernel_info_request handled and replied"),
]
AFTER = ("runtime", "after the reply: runtime built (interpreter, streams, history, hooks)")


def trace_starts(spec: KernelSpec, ctx: Any, env: dict[str, str | None], runs: int) -> dict[str, Any]:
    """Median milliseconds per step over ``runs`` starts, and to the client's reply."""
    intervals: dict[str, list[float]] = {name: [] for name, _ in [*STEPS, AFTER]}
    totals: list[float] = []
    for run in range(runs + 1):  # the first start is a warm-up
        with KernelProcess(spec, ctx, env) as kp:
            trace = kp.tmp / "start-trace.json"
            kp.env_overrides["FASTKERNEL_START_TRACE"] = str(trace)
            spawned = time.time()
            seconds = kp.start()
            marks = _wait_for_marks(trace)
        if run == 0 or marks is None:
            continue
        totals.append(seconds * 1000)
        previous = spawned
        for name, _ in [*STEPS, AFTER]:
            intervals[name].append((marks[name] - previous) * 1000)
            previous = marks[name]
    return {
        "steps": [(label, statistics.median(intervals[name])) for name, label in STEPS if intervals[name]],
        "after": (AFTER[1], statistics.median(intervals[AFTER[0]])) if intervals[AFTER[0]] else None,
        "reply_ms": statistics.median(totals) if totals else None,
    }


def _wait_for_marks(path: Path, timeout: float = 10.0) -> dict[str, float] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            marks: dict[str, float] = json.loads(path.read_text())
            return marks
        except (OSError, ValueError):
            time.sleep(0.01)
    print(f"  no start trace in {path}", file=sys.stderr)
    return None


def imports_before_reply(spec: KernelSpec, ctx: Any, env: dict[str, str | None]) -> tuple[float, list[Any]]:
    """``-X importtime`` of one start, cut at the first reply: (total ms, [(what, ms)])."""
    argv = list(spec.argv)
    timed = KernelSpec(argv=[argv[0], "-X", "importtime", *argv[1:]], display_name="fastkernel -X importtime")
    with KernelProcess(timed, ctx, env) as kp:
        kp.env_overrides["FASTKERNEL_START_TRACE"] = str(kp.tmp / "start-trace.json")
        kp.start()
        _wait_for_marks(kp.tmp / "start-trace.json")
        log_text = kp.log_path.read_text(errors="replace")
    before, _, _ = log_text.partition("fastkernel start: first_reply")
    return import_profile(before)
