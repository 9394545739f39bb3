"""Benchmark fastkernel against ipykernel and xeus-python installed in the same environment.

Usage: ``python benchmarks/run.py [--quick] [--no-docs] [--docs PATH]``, or one section alone
(``--floods``, ``--interrupts``, ``--hostile``, ``--libraries``, ``--subshells``, ``--curve``,
``--density``).
Prints a table and (by default) writes it, with the method, to docs/performance.md. Every kernel is driven by
the same small zmq client (benchmarks/client.py); every kernel process is shut down at the
end, on error, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from client import KernelDied, KernelProcess, shutdown_all
from curve import curve_markdown, measure_curve
from debugger import debugger_markdown, measure_debugger
from density import density_markdown, measure_density
from floods import markdown as floods_markdown
from floods import measure_floods
from hostile import markdown as hostile_markdown
from hostile import measure_hostile
from interrupts import markdown as interrupts_markdown
from interrupts import measure_interrupts
from jupyter_client.kernelspec import KernelSpec
from libraries import libraries_markdown, measure_libraries
from measures import (
    PrintResult,
    big_print,
    completions,
    execute,
    pipelined,
    round_trips,
    rss_bytes,
)
from report import Report, splice_section
from startpath import imports_before_reply, trace_starts
from subshells import measure_subshells, subshells_markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "performance.md"
KERNEL_DIR = Path(sys.prefix) / "share" / "jupyter" / "kernels"


@dataclass
class Kernel:
    label: str  # column name
    spec_name: str
    package: str  # distribution whose version is reported
    module: str  # must be importable for the kernel to run
    install: list[str] | None = None  # installs the spec into sys.prefix when it is missing
    spec: KernelSpec | None = None
    version: str = ""
    skipped: str = ""
    startup: list[float] = field(default_factory=list)
    rss: int | None = None
    rt: list[float] = field(default_factory=list)
    pipelined: list[float] = field(default_factory=list)
    prints: list[PrintResult] = field(default_factory=list)
    flushed: list[PrintResult] = field(default_factory=list)  # the same prints, each flushed
    completion_cold: float | None = None  # the first complete_request of the kernel
    completions: dict[str, list[float]] = field(default_factory=dict)  # per COMPLETIONS key
    completion_misses: list[str] = field(default_factory=list)  # replies without the expected match
    floods: dict[str, Any] = field(default_factory=dict)  # floods.FloodResult per floods.CASES key
    interrupts: dict[Any, Any] = field(default_factory=dict)  # see interrupts.measure_interrupts
    hostile: dict[str, Any] = field(default_factory=dict)  # see hostile.measure_hostile
    subshell_rt: list[float] | str | None = None  # see subshells.measure_subshells
    library_cells: dict[str, Any] = field(default_factory=dict)  # see libraries.measure_libraries
    debugger: dict[str, Any] | str | None = None  # see debugger.measure_debugger
    curve: dict[str, Any] | str | None = None  # see curve.measure_curve
    density: dict[str, float] | str | None = None  # see density.measure_density


def all_kernels() -> list[Kernel]:
    py = sys.executable
    return [
        Kernel(
            "fastkernel",
            "fastkernel",
            "fastkernel",
            "fastkernel",
            [py, "-m", "fastkernel", "install", "--sys-prefix"],
        ),
        Kernel(
            "ipykernel",
            "python3",
            "ipykernel",
            "ipykernel",
            [py, "-m", "ipykernel", "install", "--sys-prefix"],
        ),
        Kernel("xeus-python", "xpython", "xeus-python", "xpython"),
    ]


@dataclass
class Settings:
    startup_runs: int  # counted starts per kernel (plus one warm-up)
    blocks: int  # the execute measurements run in this many round-robin blocks
    round_trips: int  # per block
    warmup: int  # executes before the first block's round trips
    pipelined: int  # executes per pipelined burst (one burst per block)
    print_lines: int  # one print run per block
    completions: int = 20  # complete_requests per case and block (after one warm-up)


FULL = Settings(startup_runs=5, blocks=3, round_trips=100, warmup=50, pipelined=1000, print_lines=50_000)
QUICK = Settings(startup_runs=2, blocks=1, round_trips=100, warmup=20, pipelined=300, print_lines=50_000)


# -- set-up -------------------------------------------------------------------


def find_kernels() -> list[Kernel]:
    """Load each kernel's spec from this environment, installing it where we may."""
    kernels = all_kernels()
    for k in kernels:
        if importlib.util.find_spec(k.module) is None:
            k.skipped = f"{k.package} is not installed (pip install -e '.[bench]')"
            continue
        spec_dir = KERNEL_DIR / k.spec_name
        if not (spec_dir / "kernel.json").exists() and k.install is not None:
            print(f"installing the {k.spec_name!r} kernelspec into {sys.prefix}", flush=True)
            subprocess.run(k.install, check=True, stdout=subprocess.DEVNULL)
        if not (spec_dir / "kernel.json").exists():
            k.skipped = f"kernelspec {k.spec_name!r} not found in {KERNEL_DIR}"
            continue
        k.spec = KernelSpec.from_resource_dir(str(spec_dir))
        k.version = importlib.metadata.version(k.package)
    return kernels


def machine() -> str:
    cpu = platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# -- measuring ----------------------------------------------------------------


def measure_startups(kernels: list[Kernel], ctx: zmq.Context, runs: int, env: dict[str, str | None]) -> None:
    """Spawn to first kernel_info_reply, kernels in turn; the first start of each is a warm-up."""
    for round_ in range(runs + 1):
        for k in kernels:
            if k.skipped:
                continue
            assert k.spec is not None
            try:
                with KernelProcess(k.spec, ctx, env) as kp:
                    seconds = kp.start()
            except KernelDied as err:
                k.skipped = f"failed to start: {err}"
                print(f"  {k.label}: {k.skipped}", flush=True)
                continue
            if round_ > 0:
                k.startup.append(seconds)
            note = " (warm-up, not counted)" if round_ == 0 else ""
            print(f"  {k.label:<12} {seconds * 1000:6.0f} ms{note}", flush=True)


def null_kernel() -> Kernel:
    argv = [sys.executable, str(Path(__file__).with_name("null_kernel.py")), "-f", "{connection_file}"]
    k = Kernel("null kernel", "", "", "zmq")
    k.spec = KernelSpec(argv=argv, display_name="null kernel", language="python")
    return k


def measure_executes(
    kernels: list[Kernel], floor: Kernel, ctx: zmq.Context, s: Settings, env: dict[str, str | None]
) -> None:
    """Idle RSS, then round trips, pipelined bursts and prints in round-robin blocks.

    All kernels run at once but only one is driven at a time; the blocks spread any
    background load on the machine over every kernel alike. The null kernel (the floor)
    takes part in the round trips and pipelined bursts.
    """
    live: dict[str, KernelProcess] = {}
    kernels = [*kernels, floor]

    def drop(k: Kernel, err: Exception) -> None:
        k.skipped = f"failed during measurement: {err}"
        print(f"  {k.label}: {k.skipped}", flush=True)
        live.pop(k.label).shutdown()

    try:
        for k in kernels:
            if k.skipped:
                continue
            assert k.spec is not None
            kp = live[k.label] = KernelProcess(k.spec, ctx, env)
            try:
                kp.start()
                kp.wait_for_iopub()
                execute(kp, "pass")
            except (KernelDied, RuntimeError) as err:
                drop(k, err)
        time.sleep(0.5)
        for k in kernels:
            if k.label in live and k is not floor:
                k.rss = rss_bytes(live[k.label].pid)
                print(f"  {k.label:<12} idle RSS {k.rss / 2**20:.1f} MiB", flush=True)
        for block in range(s.blocks):
            for k in kernels:
                if k.label not in live:
                    continue
                kp = live[k.label]
                try:
                    measure_block(k, kp, s, s.warmup if block == 0 else 10)
                except (KernelDied, RuntimeError) as err:
                    drop(k, err)
    finally:
        for kp in live.values():
            kp.shutdown()


def measure_block(k: Kernel, kp: KernelProcess, s: Settings, warmup: int) -> None:
    rt = round_trips(kp, s.round_trips, warmup)
    k.rt.extend(rt)
    k.pipelined.append(pipelined(kp, s.pipelined))
    if not k.spec_name:  # the null kernel runs no code
        med = statistics.median(rt) * 1e3
        print(f"  {k.label:<12} round trip {med:.3f} ms, pipelined {k.pipelined[-1]:.0f}/s", flush=True)
        return
    r = big_print(kp, s.print_lines)
    k.prints.append(r)
    print(
        f"  {k.label:<12} round trip {statistics.median(rt) * 1e3:.3f} ms, "
        f"pipelined {k.pipelined[-1]:.0f}/s, {s.print_lines} prints {describe(r)}",
        flush=True,
    )
    f = big_print(kp, s.print_lines, flush=True)
    k.flushed.append(f)
    print(f"  {k.label:<12} {s.print_lines} prints with flush=True {describe(f)}", flush=True)
    measure_completions(k, kp, s.completions)


# (key, cell run first, code completed with the cursor at its end, a match it must offer)
COMPLETIONS = [
    ("os", "pass", "import os; os.pa", "path"),
    ("np", "import numpy as np", "np.ar", "arange"),
]


def measure_completions(k: Kernel, kp: KernelProcess, n: int) -> None:
    """complete_request latency, to reply + idle; the kernel's first completion is kept apart."""
    for key, setup, code, expect in COMPLETIONS:
        first, times, found = completions(kp, setup, code, expect, n)
        if k.completion_cold is None:
            k.completion_cold = first
        k.completions.setdefault(key, []).extend(times)
        if not found and code not in k.completion_misses:
            k.completion_misses.append(code)
        note = "" if found else f" (WITHOUT {expect!r})"
        med = statistics.median(times) * 1e3
        print(f"  {k.label:<12} complete {code!r} {med:.1f} ms, first {first * 1e3:.0f} ms{note}", flush=True)


def describe(r: PrintResult) -> str:
    exact = "exact" if r.exact else "NOT EXACT"
    late = f", {r.late_bytes} bytes after idle" if r.late_bytes else ""
    received = f"{r.stdout_bytes}/{r.expected_bytes} bytes {exact}"
    return f"{r.seconds:.3f} s ({received}, {r.messages} messages{late})"


def startup_breakdown(
    fk: Kernel, floor: Kernel, ctx: zmq.Context, env: dict[str, str | None], runs: int
) -> dict[str, Any]:
    """Where fastkernel's start goes (benchmarks/startpath.py), beside the bare interpreter and
    the null kernel (the floor: pyzmq, five sockets, a signed reply)."""
    assert fk.spec is not None and floor.spec is not None
    child_env = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    for name, value in env.items():
        if value is None:
            child_env.pop(name, None)
    bare = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=child_env, check=True)
        bare.append(time.perf_counter() - t0)
    measure_startups([floor], ctx, runs, env)
    steps = trace_starts(fk.spec, ctx, env, runs)
    total, ranked = imports_before_reply(fk.spec, ctx, env)
    return {
        "bare_ms": statistics.median(bare) * 1e3,
        "floor_ms": statistics.median(floor.startup) * 1e3 if floor.startup else None,
        **steps,
        "imports_ms": total,
        "by_package": ranked[:8],
    }


# -- main ---------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations: a smoke run of a few seconds")
    parser.add_argument("--docs", type=Path, default=DOCS, help=f"where to write the report (default {DOCS})")
    parser.add_argument(
        "--no-docs", action="store_true", help="print the table only; do not write the report"
    )
    parser.add_argument(
        "--floods",
        action="store_true",
        help="run only the flood measures (benchmarks/floods.py); rewrite only their section of the docs",
    )
    parser.add_argument(
        "--interrupts",
        action="store_true",
        help="run only the interrupt measures (benchmarks/interrupts.py); rewrite only their section",
    )
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="run only the forged-flood measures (benchmarks/hostile.py); rewrite only their section",
    )
    parser.add_argument(
        "--libraries",
        action="store_true",
        help="run only the first tqdm.auto and rich cells (benchmarks/libraries.py); rewrite their section",
    )
    parser.add_argument(
        "--subshells",
        action="store_true",
        help="run only the subshell round trips (benchmarks/subshells.py); rewrite only their section",
    )
    parser.add_argument(
        "--debugger",
        action="store_true",
        help="run only the debugger-attached measures (benchmarks/debugger.py); rewrite only their section",
    )
    parser.add_argument(
        "--curve",
        action="store_true",
        help="run only the CurveZMQ round trips and flood (benchmarks/curve.py); rewrite only their section",
    )
    parser.add_argument(
        "--density",
        action="store_true",
        help="run only the kernel density measure (benchmarks/density.py); rewrite only its section",
    )
    return parser.parse_args(argv)


# The measures that have a section of their own in the docs, and can run alone (--floods, ...):
# (what is printed before them, how they are measured, their section of docs/performance.md).
SECTIONS: dict[str, tuple[str, Any, Any]] = {
    "floods": ("floods (a fresh kernel per case):", measure_floods, floods_markdown),
    "interrupts": (
        "interrupts (a fresh kernel per kernel and mode):",
        measure_interrupts,
        interrupts_markdown,
    ),
    "hostile": ("hostile input (a fresh kernel per kernel):", measure_hostile, hostile_markdown),
    "subshells": ("subshells (a fresh kernel per kernel):", measure_subshells, subshells_markdown),
    "libraries": ("first library cells (a fresh kernel each):", measure_libraries, libraries_markdown),
    "debugger": (
        "the debugger off, then attached (a fresh kernel per kernel):",
        measure_debugger,
        debugger_markdown,
    ),
    "curve": ("transport encryption (a fresh kernel per kernel and mode):", measure_curve, curve_markdown),
    "density": ("kernel density (20 kernels behind one jupyter_server):", measure_density, density_markdown),
}


def measure_section(name: str, kernels: list[Kernel], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    title, measure, _ = SECTIONS[name]
    print(title, flush=True)
    measure(kernels, ctx, env)


def describe_setup(kernels: list[Kernel], load_before: str) -> None:
    """Print the interpreter, machine and kernels; warn when the machine is busy."""
    print(f"Python {platform.python_version()}; {machine()}; load average {load_before}")
    for k in kernels:
        print(f"  {k.label}: {'skipped, ' + k.skipped if k.skipped else k.version}")
    with contextlib.suppress(OSError):
        if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
            print("warning: the machine is busy (see the load average); figures will be noisy", flush=True)


@contextlib.contextmanager
def bench_context() -> Iterator[tuple[zmq.Context, dict[str, str | None]]]:
    """A zmq context and the kernels' environment; on the way out (error, Ctrl-C, SIGTERM
    included) every kernel is shut down and the bytecode cache removed."""
    # Every kernel reads and writes bytecode in one private cache, so none pays for compiling
    # its sources (an editable install under PYTHONDONTWRITEBYTECODE=1 would, on every start).
    cache = tempfile.mkdtemp(prefix="fk-bench-pycache-")
    env: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": cache}
    ctx = zmq.Context()
    try:
        yield ctx, env
    finally:
        shutdown_all()
        ctx.term()
        shutil.rmtree(cache, ignore_errors=True)


def measure_all(
    kernels: list[Kernel], ctx: zmq.Context, env: dict[str, str | None], settings: Settings, quick: bool
) -> tuple[dict[str, Any], Kernel]:
    """Every measure, into ``kernels``; return fastkernel's startup breakdown and the null kernel."""
    print("startup (spawn to first kernel_info_reply):", flush=True)
    measure_startups(kernels, ctx, settings.startup_runs, env)
    print("executes (round-robin blocks, all kernels running):", flush=True)
    floor = null_kernel()
    measure_executes(kernels, floor, ctx, settings, env)
    breakdown: dict[str, Any] = {}
    if not kernels[0].skipped:
        print("fastkernel's start path, beside the null kernel's start:", flush=True)
        breakdown = startup_breakdown(kernels[0], floor, ctx, env, runs=settings.startup_runs)
    if not quick:  # about two minutes: --floods runs them alone
        measure_section("floods", kernels, ctx, env)
    measure_section("interrupts", kernels, ctx, env)
    measure_section("hostile", kernels, ctx, env)
    measure_section("subshells", kernels, ctx, env)
    measure_section("libraries", kernels, ctx, env)
    measure_section("debugger", kernels, ctx, env)
    measure_section("curve", kernels, ctx, env)
    measure_section("density", kernels, ctx, env)
    return breakdown, floor


def publish(report: Report, kernels: list[Kernel], args: argparse.Namespace) -> None:
    """Print the report; unless --no-docs, write it, with every section, to the docs."""
    print()
    print(report.text())
    if args.no_docs:
        return
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    args.docs.write_text(report.markdown(machine=machine()), encoding="utf-8")
    for _, _, section_of in SECTIONS.values():
        section = section_of(kernels)
        if section:
            splice_section(args.docs, section)
    print(f"\nwrote {args.docs}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    # SIGTERM (make, CI, timeout) unwinds like Ctrl-C, so the finally blocks shut kernels down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    load_before = load_average()
    kernels = find_kernels()
    describe_setup(kernels, load_before)
    if kernels[0].skipped:
        print("fastkernel itself is unavailable; nothing to compare", file=sys.stderr)
        return 1
    only = [name for name in SECTIONS if getattr(args, name)]
    with bench_context() as (ctx, env):
        if only:  # the first of them, as before: --floods, then --interrupts, then --hostile
            measure_section(only[0], kernels, ctx, env)
            return _section_only(SECTIONS[only[0]][2](kernels), args)
        breakdown, floor = measure_all(kernels, ctx, env, settings, args.quick)
    took = time.monotonic() - started
    report = Report(kernels, settings, quick=args.quick, took=took, load=(load_before, load_average()))
    report.breakdown = breakdown
    report.floor = floor
    publish(report, kernels, args)
    print(f"took {took:.0f} s")
    return 0


def _section_only(section: str, args: argparse.Namespace) -> int:
    """Print one section and splice it into the docs in place of its old version."""
    print()
    print(section)
    if section and not args.no_docs and args.docs.exists():
        splice_section(args.docs, section)
        print(f"wrote {section.splitlines()[0].lstrip('# ')!r} in {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
