"""``usage_request`` (jupyter-resource-usage): the kernel's and the host's CPU and memory.

Read from /proc, without psutil, with ipykernel's field names and units: ``kernel_cpu`` in
percent of one CPU since the previous request (the kernel and the processes it started),
``kernel_memory`` in bytes (PSS where Linux reports it, else RSS), ``host_cpu_percent`` since
the previous request, and ``host_virtual_memory`` with psutil's field names, in bytes. Where
/proc is missing (macOS), only ``hostname``, ``pid`` and ``cpu_count`` are sent, as ipykernel
does without psutil.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from fastkernel.lifecycle import find_children

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_last: dict[str, float] = {}  # the previous request's readings (first request: since start)
_lock = threading.Lock()


def usage_content() -> dict[str, Any]:
    content: dict[str, Any] = {"status": "ok", "hostname": socket.gethostname(), "pid": os.getpid()}
    content["cpu_count"] = os.cpu_count()
    if not os.path.isdir("/proc/self"):
        return content
    pids = [os.getpid(), *sorted(find_children())]
    with _lock:
        content["kernel_cpu"] = _kernel_cpu_percent(pids)
        host = _host_cpu_percent()
    if host is not None:
        content["host_cpu_percent"] = host
    content["kernel_memory"] = sum(_memory_bytes(pid) for pid in pids)
    content["host_virtual_memory"] = host_virtual_memory()
    return content


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime


def _kernel_cpu_percent(pids: list[int]) -> float:
    now, used = time.monotonic(), sum(_cpu_seconds(pid) for pid in pids)
    before_t, before_used = _last.get("t", _process_start()), _last.get("kernel", 0.0)
    _last.update(t=now, kernel=used)
    elapsed = now - before_t
    return round(100.0 * max(0.0, used - before_used) / elapsed, 1) if elapsed > 0 else 0.0


def _process_start() -> float:
    """When this process started, on the monotonic clock (the first request's baseline)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return time.monotonic()
    return time.monotonic() - (uptime - start_ticks / _CLOCK_TICKS)


def _host_cpu_percent() -> float | None:
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle, total = values[3] + (values[4] if len(values) > 4 else 0), sum(values[:8])
    before_idle, before_total = _last.get("idle"), _last.get("total")
    _last.update(idle=idle, total=total)
    if before_idle is None or before_total is None or total <= before_total:
        return None  # as psutil's first call: no interval to measure yet
    return round(100.0 * (1 - (idle - before_idle) / (total - before_total)), 1)


def _memory_bytes(pid: int) -> int:
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return 0


def host_virtual_memory() -> dict[str, Any]:
    """psutil.virtual_memory()'s fields (Linux), from /proc/meminfo."""
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, value = line.split(":", 1)
                info[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        return {}
    total, free = info.get("MemTotal", 0), info.get("MemFree", 0)
    buffers, cached = info.get("Buffers", 0), info.get("Cached", 0) + info.get("SReclaimable", 0)
    available = info.get("MemAvailable", free + buffers + cached)
    used = max(0, total - free - buffers - cached)
    return {
        "total": total,
        "available": available,
        "percent": round(100.0 * (total - available) / total, 1) if total else 0.0,
        "used": used,
        "free": free,
        "active": info.get("Active", 0),
        "inactive": info.get("Inactive", 0),
        "buffers": buffers,
        "cached": cached,
        "shared": info.get("Shmem", 0),
        "slab": info.get("Slab", 0),
    }
