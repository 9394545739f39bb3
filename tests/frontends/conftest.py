"""Helpers for driving real Jupyter frontends as subprocesses.

``tests.conftest`` has already put the ``fastkernel-test`` kernelspec on ``JUPYTER_PATH``
in ``os.environ`` (tests.kernels.use_test_jupyter_dirs); every subprocess started here gets a
copy of that environment.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.kernels import pid_alive

BIN_DIR = Path(sys.executable).parent


def frontend_env(**extra: str) -> dict[str, str]:
    """The test process's environment (with the test kernelspec on JUPYTER_PATH), plus ``extra``."""
    env = dict(os.environ)
    assert "JUPYTER_PATH" in env, "tests.conftest must have installed the test kernelspec"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Poll until ``pid`` has exited or ``timeout`` seconds pass; return whether it is gone."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux procfs; empty elsewhere)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def tcp_established(port: int) -> bool:
    """True if some TCP connection to or from ``port`` is ESTABLISHED (Linux procfs)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            ports = {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)}
            if state == "01" and port in ports:
                return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
