"""Kernel density: how many kernels a node holds. COUNT kernels behind one jupyter_server.

For fastkernel and ipykernel, one after the other in the same run: a fresh ``jupyter server``,
COUNT ``POST /api/kernels`` at once, then each kernel's channels websocket until its
``kernel_info_reply`` (ready); the time from the first POST to the last reply, and, once the
kernels have been idle for a moment, the summed RSS of every process under the server (the
kernels and anything they started). Then every kernel is deleted and the server stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

COUNT = 20
KERNELS = ("fastkernel", "ipykernel")  # the kernels compared (labels of run.all_kernels)
TIMEOUT = 120.0
SETTLE_S = 2.0  # idle time before RSS is read: start-up garbage collected, threads parked


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A jupyter_server subprocess on loopback with a token, in a temporary root."""

    def __init__(self, env: dict[str, str | None]) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="fk-density-")
        self.port, self.token = _free_port(), secrets.token_hex(16)
        full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        for name in ("runtime", "config", "data"):
            full_env[f"JUPYTER_{name.upper()}_DIR"] = os.path.join(self.tmp.name, name)
        self.log = open(os.path.join(self.tmp.name, "server.log"), "wb")  # noqa: SIM115  # closed in stop
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1"]
            + [f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0"]
            + [f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.tmp.name}"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                self.request("GET", "/api")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("jupyter server did not start") from None
                time.sleep(0.1)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def ready(self, kernel_id: str) -> None:
        """Until the kernel answers a kernel_info_request through the channels websocket."""
        import websocket

        url = f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels?token={self.token}"
        ws = websocket.create_connection(url, timeout=TIMEOUT)
        try:
            msg_id = uuid.uuid4().hex
            header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "bench"}
            header.update(session=uuid.uuid4().hex, date="2024-01-01T00:00:00Z", version="5.3")
            ws.send(
                json.dumps(
                    {"header": header, "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell"}
                )
            )
            while True:
                msg = json.loads(ws.recv())
                if (
                    msg.get("msg_type") == "kernel_info_reply"
                    and msg["parent_header"].get("msg_id") == msg_id
                ):
                    return
        finally:
            ws.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # twice: no confirmation prompt
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (Linux procfs)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure_one(spec_name: str, env: dict[str, str | None]) -> dict[str, float]:
    load = os.getloadavg()[0]
    server = Server(env)
    ids: list[str] = []
    try:
        with ThreadPoolExecutor(COUNT) as pool:
            started = time.monotonic()
            ids = list(
                pool.map(
                    lambda _: server.request("POST", "/api/kernels", {"name": spec_name})["id"], range(COUNT)
                )
            )
            list(pool.map(server.ready, ids))
            ready_s = time.monotonic() - started
        time.sleep(SETTLE_S)
        kernel_pids = descendants(server.proc.pid)
        total = sum(rss(pid) for pid in kernel_pids)
        return {
            "ready_s": ready_s,
            "rss": total,
            "processes": len(kernel_pids),
            "load": load,
        }
    finally:
        for kernel_id in ids:
            with contextlib.suppress(OSError):
                server.request("DELETE", f"/api/kernels/{kernel_id}")
        server.stop()


def measure_density(kernels: list[Any], ctx: Any, env: dict[str, str | None]) -> None:
    del ctx  # the server's own clients talk to the kernels
    for k in kernels:
        if k.label not in KERNELS or k.skipped or k.spec is None:
            continue
        try:
            k.density = measure_one(k.spec_name, env)
        except (OSError, RuntimeError) as err:
            k.density = f"failed: {err}"
            print(f"  {k.label:<12} {k.density}", flush=True)
            continue
        d = k.density
        print(
            f"  {k.label:<12} {COUNT} kernels ready in {d['ready_s']:.1f} s; "
            f"total RSS {d['rss'] / 2**20:.0f} MiB ({d['processes']:.0f} processes)",
            flush=True,
        )


def density_markdown(kernels: list[Any]) -> str:
    measured = [k for k in kernels if isinstance(getattr(k, "density", None), dict)]
    if not measured:
        return ""
    labels = ", ".join(k.label for k in measured)
    mib = [round(k.density["rss"] / 2**20) for k in measured]
    seconds = [round(k.density["ready_s"], 1) for k in measured]
    lines = [
        "## Kernel density",
        "",
        f"{COUNT} kernels started at once behind one `jupyter server`, one kernel after the other",
        "in the same run; measured by `benchmarks/density.py` (`python benchmarks/run.py --density`",
        "runs only this and rewrites this section). Ready: from the first `POST /api/kernels` until",
        "every kernel has answered a `kernel_info_request` through its channels websocket. RSS: the",
        f"sum over every process under the server (the kernels), after {SETTLE_S:g} s idle; pages",
        "that kernels share (libraries) count once per kernel, so the sum overstates the node's use.",
        f"{os.cpu_count()} CPUs; load average before each kernel's run: "
        + ", ".join(f"{k.label} {k.density['load']:.2f}" for k in measured)
        + ".",
        "",
        "| measure | " + " | ".join(k.label for k in measured) + " |",
        "| --- |" + " --- |" * len(measured),
        f"| total RSS of {COUNT} idle kernels | " + " | ".join(f"{m} MiB" for m in mib) + " |",
        "| RSS per kernel | " + " | ".join(f"{m / COUNT:.1f} MiB" for m in mib) + " |",
        f"| all {COUNT} ready | " + " | ".join(f"{s:.1f} s" for s in seconds) + " |",
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "Total RSS of {COUNT} idle kernels behind one jupyter_server (MiB)"',
        f"    x-axis [{labels}]",
        f'    y-axis "MiB" 0 --> {max(mib) * 1.1:.0f}',
        f"    bar {mib}",
        "```",
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "Seconds until all {COUNT} kernels are ready"',
        f"    x-axis [{labels}]",
        f'    y-axis "s" 0 --> {max(seconds) * 1.1:.1f}',
        f"    bar {seconds}",
        "```",
    ]
    return "\n".join(lines) + "\n"
