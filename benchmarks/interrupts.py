"""Interrupt measures: latency and an interrupt storm, against every kernel, in both modes.

- **latency**: a running ``time.sleep(30)`` cell, and a busy Python loop, are interrupted once
  their "started" output has arrived; the time from the interrupt to the execute_reply.
- **storm**: ``STORM_CELLS`` short random cells (0-20 ms) sent back to back, with interrupts
  at random moments between the sends; how many execute_requests never got a reply.

Signal mode is SIGINT to the kernel's process group (as jupyter_client sends it for
``interrupt_mode: signal``); message mode is ``interrupt_request`` on control. Each kernel and
mode gets a fresh kernel. Run alone with ``python benchmarks/run.py --interrupts`` (about a
minute): prints the table and replaces the "Interrupts" section of docs/performance.md.
"""

from __future__ import annotations

import statistics
from typing import Any

import zmq
from client import KernelDied, KernelProcess
from measures import INTERRUPT_CELLS, StormResult, interrupt_latency, interrupt_storm

MODES = ("signal", "message")
LATENCY_RUNS = 5
STORM_CELLS = 200
STORM_SEEDS = (1, 2)


def measure_interrupts(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    """Results go to ``k.interrupts``: {(cell or "storm", mode): [seconds] or [StormResult]}."""
    for k in kernels:
        if k.skipped or k.spec is None:
            continue
        for mode in MODES:
            try:
                with KernelProcess(k.spec, ctx, env) as kp:
                    kp.start()
                    kp.wait_for_iopub()
                    _measure(k, kp, mode)
            except (KernelDied, RuntimeError) as err:
                print(f"  {k.label:<12} {mode}: failed: {err}", flush=True)
                k.interrupts[("failed", mode)] = str(err).splitlines()[0] if str(err) else type(err).__name__


def _measure(k: Any, kp: KernelProcess, mode: str) -> None:
    results = k.interrupts
    for name, code in INTERRUPT_CELLS.items():
        times: list[float | None] = []
        for _ in range(LATENCY_RUNS):
            seconds = interrupt_latency(kp, code, mode)
            times.append(seconds)
            if seconds is None:  # not interruptible this way: do not wait out 30 s again
                break
        results[(name, mode)] = times
        print(f"  {k.label:<12} {mode:<7} {name:<9} {_latency(times)}", flush=True)
    storms = [interrupt_storm(kp, mode, STORM_CELLS, seed) for seed in STORM_SEEDS if kp.alive()]
    results[("storm", mode)] = storms
    print(f"  {k.label:<12} {mode:<7} storm     {_storm(storms)}", flush=True)


def _latency(times: list[float | None]) -> str:
    ok = [t for t in times if t is not None]
    if not ok or len(ok) < len(times):
        return "not interrupted within 10 s"
    return f"{statistics.median(ok) * 1e3:.0f} ms (median of {len(ok)}, max {max(ok) * 1e3:.0f})"


def _storm(storms: list[StormResult]) -> str:
    if not storms:
        return "-"
    sent = sum(s.sent for s in storms)
    lost = sum(s.lost for s in storms)
    interrupts = sum(s.interrupts for s in storms)
    stuck = "" if all(s.responsive for s in storms) else ", UNRESPONSIVE after"
    malformed = sum(s.outcomes.get("malformed reply", 0) for s in storms)
    bad = f", {malformed} malformed" if malformed else ""
    return f"{lost} of {sent} replies lost{bad} ({interrupts} interrupts){stuck}"


def _cell(k: Any, name: str, mode: str, fmt: Any) -> str:
    if (name, mode) in k.interrupts:
        return str(fmt(k.interrupts[(name, mode)]))
    failed = k.interrupts.get(("failed", mode))
    return f"failed: {failed}" if failed else "-"


def markdown(kernels: list[Any]) -> str:
    shown = [k for k in kernels if getattr(k, "interrupts", None)]
    if not shown:
        return ""
    header = ["measure", *(k.label for k in shown)]
    rows = [header, ["---"] * len(header)]
    for mode in MODES:
        for name in INTERRUPT_CELLS:
            cells = [_cell(k, name, mode, _latency) for k in shown]
            rows.append([f"{mode} mode: interrupt `{name}` cell, to execute_reply", *cells])
        cells = [_cell(k, "storm", mode, _storm) for k in shown]
        rows.append([f"{mode} mode: storm, replies lost", *cells])
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(
        [
            "## Interrupts",
            "",
            "A fresh kernel per kernel and mode; measured by `benchmarks/interrupts.py` (`python",
            "benchmarks/run.py --interrupts` runs only these and rewrites this section). Signal mode:",
            "SIGINT to the kernel's process group, as jupyter_client sends it; message mode:",
            "`interrupt_request` on control. Latency: from the interrupt, sent once the cell's",
            f"`started` output arrived, to its `execute_reply` ({LATENCY_RUNS} runs). Storm:",
            f"{STORM_CELLS} cells of 0-20 ms sent back to back (seeds {', '.join(map(str, STORM_SEEDS))});",
            "after each send, with probability 0.4, an interrupt 0-20 ms later. A reply is lost when",
            "none came within 5 s of the last one; a kernel that dies is marked failed. See",
            'docs/reliability.md, "Interrupts and stdin".',
            "",
            table,
            "",
        ]
    )
