"""Turn measurements into the table, the target verdicts and docs/performance.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from measures import PrintResult, percentile

REFERENCE = "fastkernel"


@dataclass
class Row:
    label: str  # short name for the targets list
    name: str
    key: str
    fmt: str
    ratio: bool = True  # show fastkernel / peer
    target_peer: str = ""
    target: str = ""  # "<= 0.75" or ">= 1.5", on fastkernel / target_peer


def print_values(runs: list[PrintResult], key: str) -> dict[str, Any]:
    """The median run's time, bytes and message count, keyed ``key``, ``key_bytes``, ``key_msgs``."""
    if not runs:
        return {}
    p = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    complete = all(r.complete for r in runs)
    return {
        key: p.seconds,
        f"{key}_bytes": f"{p.stdout_bytes:,} / {p.expected_bytes:,}" + ("" if complete else " (LOST)"),
        f"{key}_msgs": p.messages,
    }


def values(k: Any) -> dict[str, Any]:
    """The figures of one kernel, keyed like :class:`Row`; empty when it was skipped."""
    if k.skipped or not k.rt:
        return {}
    return {
        "startup": statistics.median(k.startup) * 1e3 if k.startup else None,
        "rt": statistics.median(k.rt) * 1e3,
        "rt99": percentile(k.rt, 0.99) * 1e3,
        "pipelined": statistics.median(k.pipelined),
        **print_values(k.prints, "print"),
        **print_values(k.flushed, "flush"),
        "rss": k.rss / 2**20 if k.rss else None,
        "complete": all(r.complete for r in k.prints),
        **completion_values(k),
    }


def completion_values(k: Any) -> dict[str, Any]:
    """complete_request medians (ms), keyed ``comp_<case>``, and the first completion's time."""
    out: dict[str, Any] = {}
    for key, times in getattr(k, "completions", {}).items():
        out[f"comp_{key}"] = statistics.median(times) * 1e3 if times else None
    if getattr(k, "completion_cold", None) is not None:
        out["comp_cold"] = k.completion_cold * 1e3
    if out:
        out["comp_misses"] = ", ".join(f"`{code}`" for code in k.completion_misses) or "none"
    return out


def startup_and_execute_rows(s: Any) -> list[Row]:
    n_rt = s.round_trips * s.blocks
    return [
        Row(
            "startup",
            f"startup to kernel_info_reply, ms (median of {s.startup_runs})",
            "startup",
            "{:.0f}",
            target_peer="xeus-python",
            target="<= 0.75",
        ),
        Row(
            "round trip",
            f"execute `pass` round trip, ms (median of {n_rt})",
            "rt",
            "{:.3f}",
            target_peer="xeus-python",
            target="<= 0.5",
        ),
        Row("round trip p99", "execute `pass` round trip, ms (99th percentile)", "rt99", "{:.3f}"),
        Row(
            "pipelined executes/s",
            f"pipelined executes/s ({s.pipelined:,} back to back, median of {s.blocks})",
            "pipelined",
            "{:,.0f}",
            target_peer="xeus-python",
            target=">= 1.5",
        ),
    ]


def print_rows(s: Any) -> list[Row]:
    return [
        Row(
            f"{s.print_lines:,}-line print time",
            f"{s.print_lines:,}-line print, s to reply + idle (median of {s.blocks})",
            "print",
            "{:.3f}",
            target_peer="ipykernel",
            target="<= 0.5",
        ),
        Row("bytes", "    stdout bytes received / expected", "print_bytes", "{}", ratio=False),
        Row("messages", "    stream messages", "print_msgs", "{:,}", ratio=False),
        Row(
            "flushed print time",
            f"{s.print_lines:,}-line print, flush=True each, s to reply + idle (median of {s.blocks})",
            "flush",
            "{:.3f}",
        ),
        Row("flushed bytes", "    stdout bytes received / expected", "flush_bytes", "{}", ratio=False),
        Row("flushed messages", "    stream messages", "flush_msgs", "{:,}", ratio=False),
    ]


def completion_rows(s: Any) -> list[Row]:
    n = s.completions * s.blocks
    return [
        Row(
            "complete os.pa", f"complete_request `import os; os.pa`, ms (median of {n})", "comp_os", "{:.1f}"
        ),
        Row(
            "complete np.ar",
            f"complete_request `np.ar` (numpy imported), ms (median of {n})",
            "comp_np",
            "{:.1f}",
        ),
        Row("first completion", "first complete_request of a fresh kernel, ms", "comp_cold", "{:.0f}"),
        Row(
            "completion misses",
            "    completions without the expected match",
            "comp_misses",
            "{}",
            ratio=False,
        ),
    ]


def memory_rows() -> list[Row]:
    return [
        Row(
            "idle RSS",
            "idle RSS after startup + 1 execute, MiB",
            "rss",
            "{:.1f}",
            target_peer="xeus-python",
            target="<= 0.75",
        ),
    ]


def table_rows(settings: Any) -> list[Row]:
    """The rows of the table, in order, for a run with these settings."""
    s = settings
    return [*startup_and_execute_rows(s), *print_rows(s), *completion_rows(s), *memory_rows()]


class Report:
    def __init__(
        self, kernels: list[Any], settings: Any, *, quick: bool, took: float, load: tuple[str, str]
    ) -> None:
        self.kernels = kernels
        self.s = settings
        self.quick = quick
        self.took = took
        self.load = load
        self.breakdown: dict[str, Any] = {}
        self.floor: Any = None  # the null kernel's results
        self.values = {k.label: values(k) for k in kernels}
        self.peers = [k.label for k in kernels if k.label != REFERENCE]
        self.rows = table_rows(settings)

    # -- table and verdicts ------------------------------------------------

    def table(self) -> str:
        ref = self.values.get(REFERENCE, {})
        header = ["metric", *(k.label for k in self.kernels), *(f"fastkernel / {p}" for p in self.peers)]
        lines = [header]
        for row in self.rows:
            cells = [row.name]
            for k in self.kernels:
                v = self.values[k.label].get(row.key)
                cells.append("skipped" if v is None else row.fmt.format(v))
            for peer in self.peers:
                a, b = ref.get(row.key), self.values[peer].get(row.key)
                ok = row.ratio and isinstance(a, int | float) and isinstance(b, int | float) and b
                cells.append(f"{a / b:.2f}" if ok else "")
            lines.append(cells)
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines
        ]
        out.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
        return "\n".join(out)

    def verdicts(self) -> list[str]:
        ref = self.values.get(REFERENCE, {})
        out = []
        for row in self.rows:
            if not row.target:
                continue
            goal = f"{row.label}: fastkernel / {row.target_peer} {row.target}"
            a, b = ref.get(row.key), self.values.get(row.target_peer, {}).get(row.key)
            if a is None or b is None:
                out.append(f"{goal}: n/a ({'fastkernel' if a is None else row.target_peer} not measured)")
                continue
            op, limit = row.target.split()
            ratio = a / b
            met = ratio <= float(limit) if op == "<=" else ratio >= float(limit)
            detail = f"{ratio:.2f}"
            if row.key == "print":
                goal += ", every byte delivered, <= 1,000 messages"
                msgs = ref["print_msgs"]
                met = met and ref["complete"] and msgs <= 1000
                detail += f"; every byte: {'yes' if ref['complete'] else 'NO'}; {msgs:,} messages"
            out.append(f"{goal}: {'MET' if met else 'NOT MET'} ({detail})")
        return out

    def busy_note(self) -> list[str]:
        """A warning when other work shared the machine: it slows threaded kernels most."""
        cores = os.cpu_count() or 1
        before = self.load[0]  # the load after includes this run's own work
        if before == "unknown" or float(before.split()[0]) <= 0.5 * cores:
            return []
        return [
            f"**The machine was busy when this run began** (1-min load {before.split()[0]}, {cores} cores).",
            "In tests with CPU hogs, the peers' round trips rose several-fold and fastkernel's much",
            "less, so the ratios below may flatter fastkernel; rerun on an idle machine.",
            "",
        ]

    def floor_line(self) -> str:
        f = self.floor
        if f is None or f.skipped or not f.rt:
            return ""
        return (
            f"Floor: the null kernel (`benchmarks/null_kernel.py`, one pyzmq thread that runs nothing) "
            f"measured by the same client: round trip {statistics.median(f.rt) * 1e3:.3f} ms, "
            f"pipelined {statistics.median(f.pipelined):,.0f} executes/s. Figures near these are "
            f"limited by the client, pyzmq and the machine rather than by the kernel."
        )

    def skipped(self) -> list[str]:
        return [f"{k.label}: skipped, {k.skipped}" for k in self.kernels if k.skipped]

    def breakdown_lines(self) -> list[str]:
        b = self.breakdown
        if not b:
            return []
        lines = [f"bare interpreter start (`python -c pass`): {b['bare_ms']:.0f} ms (median)"]
        if b.get("floor_ms") is not None:
            lines.append(
                f"the null kernel (`benchmarks/null_kernel.py`: pyzmq, sockets, one signed reply), "
                f"spawn to kernel_info_reply: {b['floor_ms']:.0f} ms (median); fastkernel in the same "
                f"traced starts: {b['reply_ms']:.0f} ms"
            )
        lines.append("fastkernel's start path, ms from the previous step (median; `FASTKERNEL_START_TRACE`):")
        lines += [f"    {ms:5.1f}  {label}" for label, ms in b.get("steps", [])]
        if b.get("after"):
            label, ms = b["after"]
            lines.append(f"    {ms:5.1f}  {label}")
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in b["by_package"])
        lines += [
            f"imports before the first reply (`-X importtime`, which inflates them): "
            f"{b['imports_ms']:.0f} ms",
            f"by first importer, ms (a package is charged with all it imports in turn): {parts}",
        ]
        return lines

    # -- output --------------------------------------------------------------

    def text(self) -> str:
        parts = [self.table(), "", self.floor_line(), "", "Targets (ratio = fastkernel / peer):"]
        parts += [f"  {v}" for v in self.verdicts()]
        if self.breakdown:
            parts += ["", "fastkernel startup breakdown:", *(f"  {line}" for line in self.breakdown_lines())]
        if self.skipped():
            parts += ["", *self.skipped()]
        return "\n".join(parts)

    def markdown(self, machine: str) -> str:
        versions = ", ".join(f"{k.label} {k.version}" for k in self.kernels if k.version)
        out = [
            "# Performance",
            "",
            "Generated by `make bench` (`python benchmarks/run.py`); rerun it to refresh this page.",
            "Compare the columns of one run; absolute figures vary between machines and runs.",
            "",
            f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Python: {platform.python_version()} ({sys.executable})",
            f"- kernels: {versions}",
            f"- machine: {machine}",
            f"- load average (1, 5, 15 min) before / after: {self.load[0]} / {self.load[1]}",
            f"- settings: {'--quick' if self.quick else 'default'}; the whole run took {self.took:.0f} s",
            "",
            *self.busy_note(),
            "Ratios are **fastkernel / peer**: below 1 means fastkernel takes less time or memory; for",
            "executes/s, above 1 means fastkernel does more per second.",
            "",
            self.table(),
            "",
            self.floor_line(),
            "",
            "## Targets",
            "",
            *(f"- {v}" for v in self.verdicts()),
        ]
        if self.skipped():
            out += ["", *(f"- {line}" for line in self.skipped())]
        if self.breakdown:
            out += [
                "",
                "## Where fastkernel's startup goes",
                "",
                *(
                    f"    - {line.strip()}" if line.startswith("    ") else f"- {line}"
                    for line in self.breakdown_lines()
                ),
                "",
                STARTUP_NOTE,
            ]
        out += ["", METHOD.format(prefix=sys.prefix)]
        return "\n".join(out)


STARTUP_NOTE = """\
What remains, and why: the interpreter's own start (`python`, `site`, the `-m` machinery) is
every kernel's, and importing pyzmq is the null kernel's too; together they are most of the
null kernel's time. fastkernel's own work before its first reply is reading the connection
file, binding five sockets and starting the heartbeat, iopub and control threads (about 2 ms)
and importing its start-path modules (the standard-library `json`, `signal`, `threading` and
its own `messages`, `wire`, `kernel`, `transport`), without traitlets (a plain `-f FILE` start
with no config file; any other start parses options and config files first) and without
`logging` (imported by the first log line). Everything else (the interpreter, streams, history,
import hooks for IPython, comm and matplotlib, fd capture, `sys.stdout`) is built on the main
thread once the first reply is out: a frontend sends its first cell after that reply, so in
practice the cell does not wait; an `execute_request` sent before any other request waits for
it. Idle RSS is measured after one execute, so it includes the runtime.
"""

METHOD = """\
## Method

`benchmarks/run.py` drives every kernel with the same single-threaded pyzmq client
(`benchmarks/client.py`): DEALER sockets for shell and control, a SUB socket for iopub, HMAC-SHA256
signing, and no jupyter_client threads or asyncio in the timed path, so that at sub-millisecond
scales the figures are the kernels' and not a client's. The client's sockets have no high-water
mark, so nothing is dropped on the receiving side. Kernels are launched from their kernelspecs
in this environment (`{prefix}/share/jupyter/kernels`) as jupyter_client launches them
(`python` in argv becomes this interpreter, the spec's env, `JPY_PARENT_PID`, a new session).
All kernels read and write bytecode in one private cache (`PYTHONPYCACHEPREFIX`, with
`PYTHONDONTWRITEBYTECODE` unset), so none pays for compiling its sources at start.

- **startup**: from just before `Popen` to the first `kernel_info_reply` on shell. The request
  is queued on a socket that is already connecting (reconnect interval 2 ms), so the figure is
  interpreter start + imports + bind + first reply. Kernels start in turn, round-robin, one at a
  time; the first start of each (which fills the bytecode cache) is not counted.
- **round trip**: one `execute_request` of `pass` at a time (`silent=False`,
  `store_history=True`), from send until both its `execute_reply` and its iopub `status: idle`
  have arrived; after warm-up executes.
- **pipelined**: that many `execute_request`s of `pass` sent back to back; executes divided by
  the time until every reply and the last request's idle have arrived.
- **print**: `for i in range(N): print(i)`, time to reply + idle. Every stdout `stream`
  message for the request is collected, joined and compared with the exact expected text;
  output arriving up to 0.3 s after idle is counted as late. "(LOST)" marks a kernel where any
  run was not exact, or had late output.
- **print, flush=True each**: the same with `print(i, flush=True)`, so that a kernel which
  sends a message per flush shows it in the message count; checked the same way.
- **completion**: `complete_request` with the cursor at the end of `import os; os.pa`, and of
  `np.ar` after a cell ran `import numpy as np`; time from send until both the reply and its iopub
  `status: idle` arrived, after one untimed warm-up per case and block. "first complete_request"
  is the kernel's very first one (a completer not yet loaded, no caches in memory). A reply that
  lacks `path` (or `arange`) is listed under "completions without the expected match".
  `os` is loaded in every kernel, so fastkernel completes `os.pa` against the live module that
  the cell's `import os` will bind; jedi in the peers infers `os` from its source and stubs.
- **idle RSS**: `VmRSS` of the launched process (`/proc/PID/status`), 0.5 s after startup and
  one `pass` execute.

Round trips, pipelined bursts and prints run in round-robin blocks with all kernels running
(only one is driven at a time), so background load on the machine falls on every kernel alike.
"""


def splice_section(doc: Path, section: str) -> None:
    """Put ``section`` in ``doc`` in place of the section with the same ``## `` heading.

    The heading is ``section``'s first line. Without such a section in ``doc``, it goes before
    "## Method", or at the end.
    """
    heading = section.split("\n", 1)[0]
    old = re.compile("^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    text = doc.read_text(encoding="utf-8")
    if old.search(text):
        text = old.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1).rstrip("\n") + "\n"
    elif "\n## Method" in text:
        text = text.replace("\n## Method", "\n" + section + "\n## Method", 1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text, encoding="utf-8")
