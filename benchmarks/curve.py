"""CurveZMQ: what transport encryption costs, each kernel beside itself without it.

For each kernel whose kernelspec declares ``metadata.supported_encryption: ["curve"]``, a fresh
kernel with CurveZMQ keys in its connection file (as jupyter_client's
``transport_encryption="required"`` writes them; the client uses the same pair) and a fresh one
without, alternating, in the same run: ``pass`` round trips (reply and idle) and the 50,000-line
print flood, timed until the cell's idle with every byte received.
"""

from __future__ import annotations

import statistics
from typing import Any

import zmq
from client import KernelProcess, in_fresh_kernel
from measures import PrintResult, big_print, round_trips

ROUND_TRIPS, WARMUP, FLOOD_LINES = 200, 30, 50_000
MODES = ("plain", "curve")


def supports_curve(spec: Any) -> bool:
    declared = (spec.metadata or {}).get("supported_encryption") or []
    return "curve" in ([declared] if isinstance(declared, str) else declared)


def measure_one(kp: KernelProcess) -> tuple[list[float], PrintResult]:
    return round_trips(kp, ROUND_TRIPS, WARMUP), big_print(kp, FLOOD_LINES)


def measure_curve(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    for k in kernels:
        if k.skipped or k.spec is None:
            continue
        if not supports_curve(k.spec):
            k.curve = "kernelspec does not declare curve"
            print(f"  {k.label:<12} {k.curve}", flush=True)
            continue
        k.curve = {}
        for mode in MODES:
            measured = in_fresh_kernel(k.spec, ctx, env, measure_one, curve=mode == "curve")
            if isinstance(measured, str):
                k.curve = f"{measured} ({mode})"
                break
            rt, flood = measured
            k.curve[mode] = (rt, flood)
            print(f"  {k.label:<12} {mode:<6} {describe_rt(rt)}; flood {describe_flood(flood)}", flush=True)
        if isinstance(k.curve, str):
            print(f"  {k.label:<12} {k.curve}", flush=True)


def describe_rt(rt: list[float]) -> str:
    return f"{statistics.median(rt) * 1e3:.3f} ms"


def describe_flood(r: PrintResult) -> str:
    whole = "" if r.exact and not r.late_bytes else " (output incomplete or late)"
    return f"{r.seconds:.2f} s{whole}"


def _cell(k: Any, mode: str, which: str) -> str:
    if isinstance(k.curve, str):
        return k.curve
    rt, flood = k.curve[mode]
    return describe_rt(rt) if which == "rt" else describe_flood(flood)


def curve_markdown(kernels: list[Any]) -> str:
    measured = [k for k in kernels if getattr(k, "curve", None) is not None]
    if not measured:
        return ""
    lines = [
        "## Transport encryption (CurveZMQ)",
        "",
        "A fresh kernel per kernel and mode; measured by `benchmarks/curve.py` (`python",
        "benchmarks/run.py --curve` runs only these and rewrites this section). `curve`: CurveZMQ",
        'keys in the connection file, as jupyter_client\'s `transport_encryption="required"`',
        "writes them, every socket encrypted; `plain`: the same without keys. Median of",
        f"{ROUND_TRIPS} `pass` round trips (reply and idle); the {FLOOD_LINES:,}-line `print` flood",
        "until idle, every byte received. See docs/security.md.",
        "",
        "| measure | " + " | ".join(k.label for k in measured) + " |",
        "| --- |" + " --- |" * len(measured),
    ]
    for mode in MODES:
        cells = " | ".join(_cell(k, mode, "rt") for k in measured)
        lines.append(f"| `pass` round trip, {mode} | {cells} |")
    for mode in MODES:
        lines.append(
            f"| {FLOOD_LINES:,}-line print flood, {mode} | "
            + " | ".join(_cell(k, mode, "flood") for k in measured)
            + " |"
        )
    return "\n".join(lines) + "\n"
