"""The visual debugger's cost: round trips and a loop with the debugger off, then attached.

A fresh kernel per kernel that says ``debugger`` in kernel_info. First, with the debugger
off: ``pass`` round trips and a cell that runs a one-million-iteration loop. Then the DAP
start JupyterLab sends (initialize, attach, configurationDone, on control) and a breakpoint
in a cell that is never run (as when a breakpoint sits in another cell), and the same
measures again with the debugger attached. The attach itself is timed too (it starts
debugpy's adapter process).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import zmq
from client import KernelProcess, in_fresh_kernel
from measures import execute

ROUND_TRIPS, WARMUP, LOOPS = 100, 20, 5
LOOP_CELL = "total = 0\nfor i in range(1_000_000):\n    total += i\n"
UNRUN_CELL = "never_run = 1\nnever_run += 1\n"


class Dap:
    """DAP requests in debug_request messages on control, numbered as a frontend numbers them."""

    def __init__(self, kp: KernelProcess) -> None:
        self.kp = kp
        self.seq = 0

    def __call__(self, command: str, **arguments: Any) -> dict[str, Any]:
        self.seq += 1
        request = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        reply = self.kp.client.request("debug_request", request, channel="control", timeout=60)
        if not reply.content.get("success"):
            raise RuntimeError(f"{command}: {reply.content.get('message', reply.content)}")
        body: dict[str, Any] = reply.content.get("body") or {}
        return body


def attach(kp: KernelProcess) -> float:
    """JupyterLab's start of the debugger, and a breakpoint in a cell never run; its seconds."""
    dap = Dap(kp)
    t0 = time.perf_counter()
    dap("initialize", clientID="jupyterlab", adapterID="python", pathFormat="path", linesStartAt1=True)
    dap("attach")
    dap("configurationDone")
    seconds = time.perf_counter() - t0
    path = dap("dumpCell", code=UNRUN_CELL)["sourcePath"]
    dap("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}], sourceModified=False)
    return seconds


def measures(kp: KernelProcess) -> dict[str, list[float]]:
    for _ in range(WARMUP):
        execute(kp, "pass")
    return {
        "rt": [execute(kp, "pass") for _ in range(ROUND_TRIPS)],
        "loop": [execute(kp, LOOP_CELL, timeout=600) for _ in range(LOOPS)],
    }


def debugger_measures(kp: KernelProcess) -> dict[str, Any] | str:
    """Round trips and loops with the debugger off, the attach, then the same attached."""
    info = kp.client.request("kernel_info_request", {}, timeout=10).content
    if not info.get("debugger") and "debugger" not in info.get("supported_features", []):
        return "no debugger (kernel_info)"
    off = measures(kp)
    attach_s = attach(kp)
    return {"off": off, "attach_s": attach_s, "on": measures(kp)}


def measure_debugger(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    for k in kernels:
        if k.skipped or k.spec is None:
            continue
        k.debugger = in_fresh_kernel(k.spec, ctx, env, debugger_measures)
        print(f"  {k.label:<12} {describe(k.debugger)}", flush=True)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.3f} ms"


def _s(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s"


def describe(result: Any) -> str:
    if not isinstance(result, dict):
        return str(result)
    off, on = result["off"], result["on"]
    return (
        f"round trip {_ms(off['rt'])} off, {_ms(on['rt'])} attached; loop {_s(off['loop'])} off, "
        f"{_s(on['loop'])} attached; attach {result['attach_s']:.2f} s"
    )


def debugger_markdown(kernels: list[Any]) -> str:
    measured = [k for k in kernels if getattr(k, "debugger", None) is not None]
    if not measured:
        return ""

    def cell(k: Any, pick: Any) -> str:
        return pick(k.debugger) if isinstance(k.debugger, dict) else str(k.debugger)

    rows = [
        ("`pass` round trip, debugger off", lambda r: _ms(r["off"]["rt"])),
        ("`pass` round trip, debugger attached", lambda r: _ms(r["on"]["rt"])),
        ("1,000,000-iteration loop, debugger off", lambda r: _s(r["off"]["loop"])),
        ("1,000,000-iteration loop, debugger attached", lambda r: _s(r["on"]["loop"])),
        ("initialize + attach + configurationDone", lambda r: f"{r['attach_s']:.2f} s"),
    ]
    lines = [
        "## Debugger",
        "",
        "A fresh kernel per kernel; measured by `benchmarks/debugger.py` (`python benchmarks/run.py",
        "--debugger` runs only these and rewrites this section). Medians of 100 `pass` round trips",
        f"(reply and idle) and of {LOOPS} runs of a cell looping one million times (`total += i`),",
        "first with the debugger never started, then after JupyterLab's start of it (initialize,",
        "attach, configurationDone on control) with one breakpoint set in a cell that does not run.",
        "See docs/debugger.md.",
        "",
        "| measure | " + " | ".join(k.label for k in measured) + " |",
        "| --- |" + " --- |" * len(measured),
    ]
    lines += [f"| {name} | " + " | ".join(cell(k, pick) for k in measured) + " |" for name, pick in rows]
    return "\n".join(lines) + "\n"
