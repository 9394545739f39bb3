"""The first cell that uses a notebook library: its cost beside ipykernel's.

A fresh kernel per kernel and library (after one `pass` cell): the time from sending the
library's first cell to its reply and idle. fastkernel pays there for what it adapts when a
library is imported (docs/ipython.md: tqdm.auto needs ipykernel.zmqshell imported).
"""

from __future__ import annotations

import statistics
from typing import Any

import zmq
from client import KernelProcess, in_fresh_kernel
from measures import execute

RUNS = 3
CELLS = {
    "tqdm.auto": "from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass",
    "rich": "import rich\nrich.print('[bold]hi[/bold]')",
}


def first_cells(spec: Any, ctx: zmq.Context, env: dict[str, str | None], code: str) -> list[float] | str:
    def first_cell(kp: KernelProcess) -> float:
        execute(kp, "pass")
        return execute(kp, code, timeout=60)

    times = []
    for _ in range(RUNS):
        took = in_fresh_kernel(spec, ctx, env, first_cell)
        if isinstance(took, str):
            return took
        times.append(took)
    return times


def measure_libraries(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    for k in kernels:
        if k.skipped or k.spec is None:
            continue
        k.library_cells = {name: first_cells(k.spec, ctx, env, code) for name, code in CELLS.items()}
        shown = ", ".join(f"{name} {describe(t)}" for name, t in k.library_cells.items())
        print(f"  {k.label:<12} {shown}", flush=True)


def describe(times: list[float] | str) -> str:
    return times if isinstance(times, str) else f"{statistics.median(times) * 1e3:.0f} ms"


def libraries_markdown(kernels: list[Any]) -> str:
    measured = [k for k in kernels if getattr(k, "library_cells", None)]
    if not measured:
        return ""
    lines = [
        "## First cell using a notebook library",
        "",
        "A fresh kernel per kernel and library, after one `pass` cell; measured by",
        "`benchmarks/libraries.py` (`python benchmarks/run.py --libraries` runs only these and",
        f"rewrites this section). Time from send to reply and idle, median of {RUNS} kernels.",
        "fastkernel pays here what ipykernel pays at start: IPython, and for `tqdm.auto` the real",
        "`ipykernel.zmqshell` that tqdm looks for (docs/ipython.md), are imported by the first cell",
        "that uses the library, not by every kernel at start. xeus-python's tqdm.auto bar is text.",
        "",
        "| first cell | " + " | ".join(k.label for k in measured) + " |",
        "| --- |" + " --- |" * len(measured),
    ]
    for name, code in CELLS.items():
        shown = code.split("\n")[-1].strip() if name == "rich" else "for _ in tqdm(range(3)): pass"
        row = " | ".join(describe(k.library_cells[name]) for k in measured)
        lines.append(f"| {name}: `{shown}` | {row} |")
    return "\n".join(lines) + "\n"
