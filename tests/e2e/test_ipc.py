"""The ipc transport: Unix socket files only their owner can open, gone when the kernel exits;
with and without CurveZMQ."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness import KernelHarness, ok, result
from tests.kernels import CHANNELS, TIMEOUT, Kernels, NewConnectionFile, read_ports

pytestmark = pytest.mark.timeout(60)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    """The kernel started meanwhile inherits ``mask``: 0 would leave its files open to all."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _socket_files(connection_file: Path) -> list[Path]:
    info = read_ports(connection_file)
    assert info is not None and info["transport"] == "ipc", info
    return [Path(f"{info['ip']}-{info[f'{channel}_port']}") for channel in CHANNELS]


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "curve"])
def test_ipc_socket_files_are_private_and_removed_at_shutdown(kernels: Kernels, curve: bool) -> None:
    with _umask(0):
        process = kernels.start(connection=NewConnectionFile(transport="ipc", curve=curve), log=True)
    kernel = KernelHarness.connect(process)
    assert process.connection_file is not None
    files = _socket_files(process.connection_file)
    for path in files:
        mode = path.stat().st_mode
        assert stat.S_ISSOCK(mode), path
        assert stat.S_IMODE(mode) == 0o600, f"{path}: {oct(stat.S_IMODE(mode))}"
    ex = ok(kernel, "print('over ipc')\n2 ** 10")
    assert ex.stream_text() == "over ipc\n"
    assert result(ex) == "1024"
    assert kernel.kc.hb_channel.is_beating()
    assert kernel.request("kernel_info_request", {}, channel="control").content["status"] == "ok"
    kernel.kc.stop_channels()
    assert process.shutdown() == 0, process.stderr
    assert [path for path in files if path.exists()] == []


def test_ipc_socket_files_are_removed_after_sigterm(kernels: Kernels) -> None:
    process = kernels.start(connection=NewConnectionFile(transport="ipc"), log=True)
    kernel = KernelHarness.connect(process)
    assert process.connection_file is not None
    files = _socket_files(process.connection_file)
    assert all(path.exists() for path in files)
    ok(kernel, "x = 1")
    kernel.kc.stop_channels()
    process.popen.terminate()
    assert process.wait(TIMEOUT) == 0, process.stderr
    assert [path for path in files if path.exists()] == []
