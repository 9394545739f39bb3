"""Subshells (JEP 91): the round trip of a subshell while the main shell runs a cell.

A fresh kernel per kernel: create a subshell on control, start a main-shell cell that waits
for an Event, time ``pass`` round trips on the subshell (reply and idle, as every round trip
here), then release the main cell from the subshell. The main shell's own round trip while no
subshell exists is the main table's. Kernels without subshells are marked so.
"""

from __future__ import annotations

import statistics
from typing import Any

import zmq
from client import KernelProcess, in_fresh_kernel
from measures import Waiter, execute

ROUND_TRIPS, WARMUP = 200, 30


def subshell_round_trips(kp: KernelProcess) -> list[float] | str:
    """Seconds per round trip on a subshell while the main shell is busy, or why not measured."""
    info = kp.client.request("kernel_info_request", {}, timeout=10)
    if "kernel subshells" not in info.content.get("supported_features", []):
        return "not supported (no `kernel subshells` in kernel_info)"
    created = kp.client.request("create_subshell_request", {}, channel="control", timeout=10)
    if created.content.get("status") != "ok" or "subshell_id" not in created.content:
        return "no subshells"
    sub = str(created.content["subshell_id"])
    execute(kp, "import threading; _fk_bench_gate = threading.Event()")
    waiter = Waiter(kp.client)
    busy = kp.client.execute("_fk_bench_gate.wait(300)")
    times = [execute(kp, "pass", subshell_id=sub) for _ in range(WARMUP + ROUND_TRIPS)][WARMUP:]
    release = kp.client.execute("_fk_bench_gate.set()", sub)
    waiter.wait([release, busy], kp, timeout=30)  # one waiter sees both, in whatever order
    return times


def measure_subshells(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    for k in kernels:
        if k.skipped or k.spec is None:
            continue
        k.subshell_rt = in_fresh_kernel(k.spec, ctx, env, subshell_round_trips)
        print(f"  {k.label:<12} {describe(k.subshell_rt)}", flush=True)


def describe(rt: list[float] | str | None) -> str:
    if rt is None:
        return "not measured"
    if isinstance(rt, str):
        return rt
    return f"{statistics.median(rt) * 1e3:.3f} ms (median of {len(rt)}, 99th percentile {_p99(rt) * 1e3:.3f})"


def _p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


def subshells_markdown(kernels: list[Any]) -> str:
    measured = [k for k in kernels if getattr(k, "subshell_rt", None) is not None]
    if not measured:
        return ""
    lines = [
        "## Subshells",
        "",
        "A fresh kernel per kernel; measured by `benchmarks/subshells.py` (`python benchmarks/run.py",
        "--subshells` runs only these and rewrites this section). A main-shell cell waits on an",
        "Event while the client times `pass` round trips (reply and idle) on a subshell created on",
        "control; the main shell's round trip with no subshell is the first table's. See",
        "docs/protocol.md#subshells.",
        "",
        "| measure | " + " | ".join(k.label for k in measured) + " |",
        "| --- |" + " --- |" * len(measured),
        "| subshell `pass` round trip while the main shell is busy | "
        + " | ".join(describe(k.subshell_rt) for k in measured)
        + " |",
    ]
    return "\n".join(lines) + "\n"
