"""Flood measures: output floods and a 100 MB display_data, against every kernel.

Each flood runs in a fresh kernel, so the peak RSS (``VmHWM``) is the flood's. While the cell
runs, the same client sends ``kernel_info_request`` on control whenever none is outstanding
(at most every 50 ms) and times the replies; iopub messages are counted per one-second window
of their arrival, as jupyter_server counts them against ``iopub_msg_rate_limit`` (1,000/s).

Run alone with ``python benchmarks/run.py --floods`` (about two minutes): prints the table and
replaces the "Floods" section of docs/performance.md. A full ``make bench`` runs them too.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import zmq
from client import KernelProcess, Msg, in_fresh_kernel

MB = 1_000_000
PING_EVERY_S = 0.05


@dataclass
class FloodCase:
    key: str
    title: str
    code: str
    expected: int  # characters of output (stream text, or display_data text/plain)


CASES = [
    FloodCase(
        "write",
        "100 MB stdout flood (`sys.stdout.write`, 1,000-char lines)",
        "import sys\nfor _ in range(100_000):\n    sys.stdout.write('x' * 999 + '\\n')",
        100 * MB,
    ),
    FloodCase(
        "alternate",
        "stdout/stderr alternating, 100,000 pairs of `print(i)`",
        "import sys\nfor i in range(100_000):\n    print(i)\n    print(i, file=sys.stderr)",
        2 * sum(len(f"{i}\n") for i in range(100_000)),
    ),
    FloodCase(
        "display",
        "100 MB `display_data` (`display({'text/plain': 'x' * 10**8}, raw=True)`)",
        "display({'text/plain': 'x' * 100_000_000}, raw=True)",
        100 * MB,
    ),
]


@dataclass
class FloodResult:
    seconds: float  # send to execute_reply + idle
    chars: int  # output characters received before idle
    expected: int
    messages: int  # non-status iopub messages of the cell
    peak_rate: int  # most of them arriving within one second
    control_ms: list[float]  # kernel_info round trips on control during the cell
    base_rss: int
    peak_rss: int  # VmHWM after the cell (a fresh kernel: the flood's peak)

    @property
    def mb_per_s(self) -> float:
        return self.chars / MB / self.seconds if self.seconds else 0.0


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0]) * 1024
    return out


class FloodWatch:
    """What the client sees of one flood cell: its outputs as they arrive, its reply and idle,
    and a kernel_info_request on control whenever none is outstanding (at most every 50 ms)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.msg_id = ""
        self.arrivals: list[float] = []
        self.outputs: list[Msg] = []  # parsed after the cell: parsing 100 MB here would delay the pings
        self.replied = False
        self.idle = False
        self.pending: dict[str, float] = {}  # control requests out: msg_id -> when sent
        self.control_ms: list[float] = []
        self.last_ping = 0.0

    def on_iopub(self, msg: Msg) -> None:
        if msg.parent_id != self.msg_id:
            return
        if msg.msg_type == "status":
            if msg.content["execution_state"] == "idle":
                self.idle = True
            return
        if msg.msg_type == "execute_input":
            return
        self.arrivals.append(time.monotonic())
        self.outputs.append(msg)

    def on_shell(self, msg: Msg) -> None:
        if msg.parent_id == self.msg_id and msg.msg_type == "execute_reply":
            self.replied = True

    def on_control(self, msg: Msg) -> None:
        sent = self.pending.pop(msg.parent_id or "", None)
        if sent is not None:
            self.control_ms.append((time.monotonic() - sent) * 1e3)

    def done(self) -> bool:
        """Whether the cell has replied and gone idle; pings control if it is time to."""
        now = time.monotonic()
        if not self.pending and now - self.last_ping >= PING_EVERY_S:
            self.last_ping = now
            self.pending[self.client.send("kernel_info_request", {}, channel="control")] = now
        return self.replied and self.idle

    def chars(self) -> int:
        """Output characters received: stream text and display_data text/plain."""
        chars = 0
        for msg in self.outputs:
            if msg.msg_type == "stream":
                chars += len(msg.content["text"])
            elif msg.msg_type == "display_data":
                chars += len(msg.content["data"].get("text/plain", ""))
        return chars

    def peak_rate(self) -> int:
        """Most outputs arriving within one one-second window."""
        windows = Counter(int(t - self.arrivals[0]) for t in self.arrivals) if self.arrivals else Counter()
        return max(windows.values(), default=0)


def run_flood(kernel: KernelProcess, case: FloodCase, timeout: float = 600.0) -> FloodResult:
    """Run ``case`` in ``kernel`` (fresh), probing control and counting iopub arrivals."""
    client = kernel.client
    base = proc_status(kernel.pid)["VmRSS"]
    watch = FloodWatch(client)
    handlers = {"on_shell": watch.on_shell, "on_iopub": watch.on_iopub, "on_control": watch.on_control}
    t0 = time.perf_counter()
    watch.msg_id = client.execute(case.code)
    client.pump(watch.done, **handlers, timeout=timeout, alive=kernel.alive)
    seconds = time.perf_counter() - t0
    # The ping still out when the cell ended counts too: a wedged control thread must show.
    if watch.pending:
        client.pump(lambda: not watch.pending, on_control=watch.on_control, timeout=30, alive=kernel.alive)
    return FloodResult(
        seconds=seconds,
        chars=watch.chars(),
        expected=case.expected,
        messages=len(watch.arrivals),
        peak_rate=watch.peak_rate(),
        control_ms=watch.control_ms,
        base_rss=base,
        peak_rss=proc_status(kernel.pid)["VmHWM"],
    )


def measure_floods(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    """Every case in a fresh kernel of each kind; results go to ``k.floods[case.key]``."""
    for case in CASES:
        for k in kernels:
            if k.skipped or k.spec is None:
                continue
            r = in_fresh_kernel(k.spec, ctx, env, lambda kp: run_flood(kp, case))  # noqa: B023  # called at once
            if isinstance(r, str):
                print(f"  {k.label:<12} {case.key}: {r}", flush=True)
                continue
            k.floods[case.key] = r
            print(f"  {k.label:<12} {case.key:<9} {describe(r)}", flush=True)


def describe(r: FloodResult) -> str:
    lost = "" if r.chars == r.expected else f" (LOST {r.expected - r.chars:,} chars)"
    ctl = f"control max {max(r.control_ms):.0f} ms" if r.control_ms else "control NO ANSWER"
    return (
        f"{r.seconds:.2f} s, {r.mb_per_s:.1f} MB/s{lost}, {r.messages:,} msgs (peak {r.peak_rate:,}/s), "
        f"{ctl}, peak RSS {r.peak_rss / 2**20:.0f} MiB"
    )


# -- report -------------------------------------------------------------------


def _cell(k: Any, key: str, fmt: Any) -> str:
    r = getattr(k, "floods", {}).get(key)
    return "-" if r is None else fmt(r)


def _control(r: FloodResult) -> str:
    if not r.control_ms:
        return "no answer"
    ordered = sorted(r.control_ms)
    return f"{ordered[len(ordered) // 2]:.0f} / {ordered[-1]:.0f}"


def _lost(r: FloodResult) -> str:
    return "" if r.chars == r.expected else " (LOST)"


ROWS = [
    ("s to reply + idle", lambda r: f"{r.seconds:.2f}"),
    ("MB/s delivered", lambda r: f"{r.mb_per_s:.1f}"),
    ("characters received before idle / expected", lambda r: f"{r.chars:,} / {r.expected:,}{_lost(r)}"),
    ("iopub messages", lambda r: f"{r.messages:,}"),
    ("peak iopub messages in 1 s (jupyter_server drops past 1,000)", lambda r: f"{r.peak_rate:,}"),
    ("control kernel_info during it, ms (median / max)", _control),
    ("peak RSS, MiB (VmHWM; idle before)", lambda r: f"{r.peak_rss / 2**20:.0f} ({r.base_rss / 2**20:.0f})"),
]


def markdown(kernels: list[Any]) -> str:
    shown = [k for k in kernels if getattr(k, "floods", None)]
    if not shown:
        return ""
    header = ["case / metric", *(k.label for k in shown)]
    rows = [header, ["---"] * len(header)]
    for case in CASES:
        if not any(case.key in k.floods for k in shown):
            continue
        rows.append([f"**{case.title}**", *([""] * len(shown))])
        for name, fmt in ROWS:
            rows.append([f"    {name}", *(_cell(k, case.key, fmt) for k in shown)])
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(
        [
            "## Floods",
            "",
            "Each case in a fresh kernel; measured by `benchmarks/floods.py` (`python benchmarks/run.py",
            "--floods` runs only these and rewrites this section). During the cell the client sends",
            "`kernel_info_request` on control whenever none is outstanding (at most every 50 ms);",
            "iopub messages are counted per second of arrival, as jupyter_server's",
            "`iopub_msg_rate_limit` counts them; their content is parsed after the cell, so that the",
            "client's own work does not delay the pings. Characters are counted up to the cell's idle.",
            "See [reliability.md](reliability.md#floods-and-memory).",
            "",
            table,
            "",
        ]
    )
