"""The ipc transport: Unix socket files only their owner can open, gone when the kernel exits;
with and without CurveZMQ."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from tests.harness import KernelHarness, ok, result
from tests.kernels import CHANNELS, KERNEL_NAME, TIMEOUT, Kernels, NewConnectionFile, read_ports
from tests.spec import validate

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


def test_jupyter_client_ipc_with_transport_encryption(tmp_path: Path) -> None:
    km = KernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(tmp_path / "k-ipc"))
    km.start_kernel(transport_encryption="required")
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        assert km.curve_publickey is not None
        msg_id = kc.execute("print('ipc and curve')")
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        validate(reply, "execute_reply", msg_id)
        assert reply["content"]["status"] == "ok"
        text = ""
        while True:
            msg = kc.get_iopub_msg(timeout=TIMEOUT)
            validate(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert text == "ipc and curve\n"
        files = sorted(tmp_path.glob("k-ipc-*"))
        assert len(files) == 5 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
