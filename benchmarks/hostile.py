"""Hostile-input measures: a flood of forged messages, against every kernel.

Each kernel gets a fresh process. A second DEALER on shell sends ``FORGED`` requests with
well-formed but wrong HMAC digests as fast as the kernel takes them; then one correctly
signed ``kernel_info_request`` on that socket, whose reply means every forgery was handled:
the rejection rate is forgeries per second until that reply. During the flood the benchmark
client times ``kernel_info_request`` on shell (another client than the forger's) and on
control, and heartbeat pings, one at a time. Reported too: the kernel's CPU per forged message
and how many log lines the flood produced. (tests/reliability/test_hostile.py checks the
behaviour under such a flood; these timings are measured here only.)

Run alone with ``python benchmarks/run.py --hostile`` (under a minute): prints the table and
replaces the "Hostile input" section of docs/performance.md. A full ``make bench`` runs it too.
"""

from __future__ import annotations

import os
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from client import DELIM, Client, KernelDied, KernelProcess, Msg, in_fresh_kernel

FORGED = 10_000
SYNC_TIMEOUT_S = 120.0
SHELL_TIMEOUT_S = 10.0  # for another client's shell kernel_info, during and after the flood


@dataclass
class HostileResult:
    seconds: float | None = None  # until the sync reply; None: not within SYNC_TIMEOUT_S
    cpu_s: float = 0.0
    log_lines: int = 0
    shell_ms: list[float] = field(default_factory=list)  # another client's, during the flood
    shell_stalled: bool = False  # one of those got no reply within SHELL_TIMEOUT_S (none sent after)
    control_ms: list[float] = field(default_factory=list)
    heartbeat_ms: list[float] = field(default_factory=list)
    shell_after_ms: float | None = None  # another client's shell kernel_info after the flood
    error: str = ""

    @property
    def rate(self) -> float | None:
        return FORGED / self.seconds if self.seconds else None


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_lines(kp: KernelProcess) -> int:
    try:
        return len(kp.log_path.read_text(errors="replace").splitlines())
    except OSError:
        return 0


def _forgeries(session: str) -> list[list[bytes]]:
    header = (
        f'{{"msg_id":"forged","msg_type":"kernel_info_request","username":"x","session":"{session}",'
        '"date":"2026-01-01T00:00:00Z","version":"5.3"}'
    ).encode()
    return [[DELIM, secrets.token_hex(32).encode(), header, b"{}", b"{}", b"{}"] for _ in range(256)]


def _flood(forger: Client, result: HostileResult, t0: float, stop: threading.Event) -> None:
    """Send the forgeries, then a signed request; time its reply (owns ``forger`` meanwhile)."""
    sock = forger.shell
    frames = _forgeries(forger.session)
    for i in range(FORGED):
        while True:  # never block in send: the main thread sets ``stop`` and waits for us
            if stop.is_set():
                return
            try:
                sock.send_multipart(frames[i % len(frames)], zmq.NOBLOCK)
                break
            except zmq.Again:  # the kernel is not taking more from this peer yet
                stop.wait(0.001)
    while not sock.poll(50, zmq.POLLOUT):
        if stop.is_set():
            return
    sync = forger.send("kernel_info_request", {})
    while not stop.is_set():
        if sock.poll(50) and Msg(sock.recv_multipart()).parent_id == sync:
            result.seconds = time.perf_counter() - t0
            return


def _timed_ms(call: Callable[[], object]) -> float:
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1e3


def _heartbeat(hb: zmq.Socket) -> None:
    hb.send(b"ping")
    if not hb.poll(10_000):
        raise KernelDied("no heartbeat within 10 s")
    hb.recv()


def _probe_during(flood: threading.Thread, kp: KernelProcess, hb: zmq.Socket, result: HostileResult) -> None:
    """Time kernel_info on shell and on control, and heartbeats, one at a time, while ``flood`` runs."""
    client, alive = kp.client, kp.alive
    t0 = time.perf_counter()
    while flood.is_alive() and time.perf_counter() - t0 < SYNC_TIMEOUT_S:
        if not result.shell_stalled:
            ms = _shell_kernel_info_ms(kp)
            result.shell_stalled = ms is None
            result.shell_ms.extend([] if ms is None else [ms])
        result.control_ms.append(
            _timed_ms(
                lambda: client.request("kernel_info_request", {}, channel="control", timeout=30, alive=alive)
            )
        )
        result.heartbeat_ms.append(_timed_ms(lambda: _heartbeat(hb)))
        time.sleep(0.002)  # leave the flood the CPU it needs


def _shell_kernel_info_ms(kp: KernelProcess) -> float | None:
    """Another client's shell kernel_info, in ms (None: no reply within SHELL_TIMEOUT_S)."""
    try:
        return _timed_ms(
            lambda: kp.client.request("kernel_info_request", {}, timeout=SHELL_TIMEOUT_S, alive=kp.alive)
        )
    except KernelDied:
        if not kp.alive():
            raise
        return None


def measure_one(kp: KernelProcess, ctx: zmq.Context) -> HostileResult:
    info = kp.info
    forger = Client(info, ctx)  # its shell socket floods, then syncs; owned by the flood thread
    hb = ctx.socket(zmq.REQ)
    hb.linger = 0
    hb.connect(f"{info['transport']}://{info['ip']}:{info['hb_port']}")
    result = HostileResult()
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        kp.client.request("kernel_info_request", {}, channel="control", timeout=30)
        lines0, cpu0 = _log_lines(kp), _cpu_seconds(kp.pid)
        thread = threading.Thread(target=_flood, args=(forger, result, time.perf_counter(), stop))
        thread.start()
        _probe_during(thread, kp, hb, result)
        stop.set()
        thread.join()
        if result.seconds is None and not kp.alive():
            raise KernelDied("kernel process exited during the flood")
        result.cpu_s = _cpu_seconds(kp.pid) - cpu0
        result.shell_after_ms = _shell_kernel_info_ms(kp)
        time.sleep(0.2)  # let the log reach the file
        result.log_lines = _log_lines(kp) - lines0
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=5)
        hb.close(linger=0)
        forger.close()
    return result


def measure_hostile(kernels: list[Any], ctx: zmq.Context, env: dict[str, str | None]) -> None:
    """Results go to ``k.hostile["flood"]`` (a HostileResult) or ``k.hostile["failed"]``."""
    for k in kernels:
        if k.skipped or k.spec is None:
            continue
        r = in_fresh_kernel(k.spec, ctx, env, lambda kp: measure_one(kp, ctx), wait_for_iopub=False)
        if isinstance(r, str):
            print(f"  {k.label:<12} {r}", flush=True)
            k.hostile["failed"] = r.removeprefix("failed: ")
            continue
        k.hostile["flood"] = r
        print(f"  {k.label:<12} {_summary(r)}", flush=True)


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{statistics.median(values):.2f} ms (p99 {p99:.1f}, n={len(values)})"


def _rate(r: HostileResult) -> str:
    if r.rate is None:
        return f"not done within {SYNC_TIMEOUT_S:.0f} s"
    return f"{r.rate:,.0f}/s"


def _after(r: HostileResult) -> str:
    return (
        f"no reply within {SHELL_TIMEOUT_S:.0f} s"
        if r.shell_after_ms is None
        else f"{r.shell_after_ms:.1f} ms"
    )


def _shell_during(r: HostileResult) -> str:
    if not r.shell_stalled:
        return _ms(r.shell_ms)
    stalled = f"no reply within {SHELL_TIMEOUT_S:.0f} s"
    return f"{_ms(r.shell_ms)}, then {stalled}" if r.shell_ms else stalled


def _summary(r: HostileResult) -> str:
    return (
        f"{FORGED} forged: {_rate(r)}, CPU {r.cpu_s / FORGED * 1e6:.0f} us/msg, {r.log_lines} log lines; "
        f"shell kernel_info {_shell_during(r)}; control kernel_info {_ms(r.control_ms)}; "
        f"heartbeat {_ms(r.heartbeat_ms)}; shell kernel_info after {_after(r)}"
    )


def markdown(kernels: list[Any]) -> str:
    shown = [k for k in kernels if getattr(k, "hostile", None)]
    if not shown:
        return ""

    def cells(fmt: Any) -> list[str]:
        out = []
        for k in shown:
            r = k.hostile.get("flood")
            out.append(fmt(r) if r is not None else f"failed: {k.hostile.get('failed', '?')}")
        return out

    rows = [
        ["measure", *(k.label for k in shown)],
        ["---"] * (len(shown) + 1),
        ["forged messages rejected per second", *cells(_rate)],
        ["kernel CPU per forged message", *cells(lambda r: f"{r.cpu_s / FORGED * 1e6:.0f} us")],
        ["kernel log lines during the flood", *cells(lambda r: str(r.log_lines))],
        ["another client's shell kernel_info after the flood", *cells(_after)],
        ["another client's shell kernel_info during the flood, median", *cells(_shell_during)],
        ["control kernel_info during the flood, median", *cells(lambda r: _ms(r.control_ms))],
        ["heartbeat round trip during the flood, median", *cells(lambda r: _ms(r.heartbeat_ms))],
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(
        [
            "## Hostile input",
            "",
            "A fresh kernel each; measured by `benchmarks/hostile.py` (`python benchmarks/run.py",
            "--hostile` runs only these and rewrites this section). A second shell DEALER sends",
            f"{FORGED:,} `kernel_info_request`s with well-formed, wrong HMAC-SHA256 digests as fast as the",
            "kernel takes them, then one signed request whose reply ends the clock. Meanwhile the client",
            "times `kernel_info_request` on shell (its own socket, not the forger's) and on control,",
            "and heartbeat pings, one at a time. See",
            'docs/reliability.md, "Hostile input".',
            "",
            table,
            "",
        ]
    )
