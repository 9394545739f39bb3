"""``python -m fastkernel`` started by hand: connection files, ports, transports, CLI errors."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.kernels import CHANNELS, KernelProcess, Kernels, pid_alive, read_ports, write_connection_file
from tests.spec import validate

TIMEOUT = 10
Launch = Callable[..., KernelProcess]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "runtime"
    environ = dict(os.environ)
    environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    environ.pop("JPY_PARENT_PID", None)
    return environ


@pytest.fixture
def launch(kernels: Kernels, env: dict[str, str]) -> Launch:
    """Start ``python -m fastkernel [-f connection_file] ARGS`` with its stderr in a log file."""

    def start(*args: str, connection_file: Path | None = None, launcher: str | None = None) -> KernelProcess:
        options = {"env": env, "log": True, "launcher": launcher}
        return kernels.start(*args, connection=connection_file, history_file=None, **options)

    return start


def _kernel_info(kc: BlockingKernelClient) -> dict[str, Any]:
    msg_id = kc.kernel_info()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    validate(reply, "kernel_info_reply", msg_id)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["implementation"] == "fastkernel"
    return reply


def _shutdown(kc: BlockingKernelClient, kernel: KernelProcess) -> None:
    msg_id = kc.shutdown()
    reply = kc.control_channel.get_msg(timeout=TIMEOUT)
    validate(reply, "shutdown_reply", msg_id)
    assert kernel.wait(TIMEOUT) == 0, kernel.stderr


def test_port_zero_binds_free_ports_and_writes_them_back(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "kernel.json"
    written = write_connection_file(path, extra_field="kept")
    kernel = launch(connection_file=path)
    info = kernel.wait_for(lambda: read_ports(path), "the real ports in the connection file")
    ports = [info[f"{c}_port"] for c in CHANNELS]
    assert len(set(ports)) == 5, ports
    assert all(0 < p < 65536 for p in ports)
    assert info["key"] == written["key"]
    assert info["transport"] == "tcp"
    assert info["ip"] == "127.0.0.1"
    assert info["signature_scheme"] == "hmac-sha256"
    assert info["extra_field"] == "kept"
    kc = kernel.client()
    try:
        _kernel_info(kc)
        assert kc.hb_channel.is_beating()
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    assert path.exists(), "a connection file the frontend wrote is the frontend's to remove"


def test_given_ports_are_used_and_file_left_alone(tmp_path: Path, launch: Launch) -> None:
    ports = []
    socks = []
    for _ in CHANNELS:  # find five free ports (closed again before the kernel binds them)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    path = tmp_path / "kernel.json"
    write_connection_file(path, **{f"{c}_port": p for c, p in zip(CHANNELS, ports, strict=True)})
    original = path.read_text()
    kernel = launch(connection_file=path)
    kc = kernel.client()
    try:
        _kernel_info(kc)
        assert path.read_text() == original
        msg_id = kc.execute("'ok'")
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        validate(reply, "execute_reply", msg_id)
        assert reply["content"]["status"] == "ok"
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()


def test_ipc_transport(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "kernel.json"
    ipc_base = tmp_path / "kipc"
    write_connection_file(path, transport="ipc", ip=str(ipc_base))
    kernel = launch(connection_file=path)
    info = kernel.wait_for(lambda: read_ports(path), "the ipc ports in the connection file")
    assert info["transport"] == "ipc"
    assert info["ip"] == str(ipc_base)
    for c in CHANNELS:
        assert Path(f"{ipc_base}-{info[f'{c}_port']}").exists(), c
    kc = kernel.client()
    try:
        _kernel_info(kc)
        assert kc.hb_channel.is_beating()
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()


def test_empty_key_is_refused(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "kernel.json"
    write_connection_file(path, key="")
    kernel = launch(connection_file=path)
    code = kernel.wait(TIMEOUT)
    assert code != 0
    assert "--allow-insecure" in kernel.stderr, kernel.stderr
    assert "key" in kernel.stderr


def test_empty_key_with_allow_insecure(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "kernel.json"
    write_connection_file(path, key="")
    kernel = launch("--allow-insecure", connection_file=path)
    kernel.wait_for(lambda: read_ports(path), "the real ports in the connection file")
    kc = kernel.client()
    try:
        assert kc.session.key == b""
        _kernel_info(kc)
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()


def test_missing_connection_file_is_a_clear_error(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "does-not-exist.json"
    kernel = launch(connection_file=path)
    assert kernel.wait(TIMEOUT) != 0
    stderr = kernel.stderr
    assert str(path) in stderr, stderr
    assert "not found" in stderr
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ["cannot read"]),
        ("[1, 2]", ["JSON object"]),
        ('{"key": "k", "shell_port": "x"}', ["shell_port"]),
        ('{"key": "k", "transport": "udp"}', ["transport"]),
    ],
    ids=["bad-json", "not-object", "bad-port", "bad-transport"],
)
def test_malformed_connection_file_is_a_clear_error(
    tmp_path: Path, launch: Launch, content: str, words: list[str]
) -> None:
    path = tmp_path / "kernel.json"
    path.write_text(content)
    kernel = launch(connection_file=path)
    assert kernel.wait(TIMEOUT) != 0
    stderr = kernel.stderr
    for word in words:
        assert word in stderr, stderr
    assert "Traceback" not in stderr, stderr


def test_unknown_signature_scheme_is_a_clear_error(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "kernel.json"
    write_connection_file(path, signature_scheme="hmac-nope")
    kernel = launch(connection_file=path)
    assert kernel.wait(TIMEOUT) != 0
    stderr = kernel.stderr
    assert "hmac-nope" in stderr, stderr
    assert "signature_scheme" in stderr
    assert "Traceback" not in stderr, stderr


def _runtime_files(runtime: Path) -> list[Path]:
    return sorted(runtime.glob("kernel-*.json")) if runtime.is_dir() else []


def _start_without_connection_file(
    env: dict[str, str], launch: Launch
) -> tuple[KernelProcess, Path, dict[str, Any]]:
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    kernel = launch()
    (path,) = kernel.wait_for(lambda: _runtime_files(runtime), "a connection file in the runtime dir")
    kernel.connection_file = path
    info = kernel.wait_for(lambda: read_ports(path), "a complete connection file")
    return kernel, path, info


def test_no_connection_file_creates_one(env: dict[str, str], launch: Launch) -> None:
    kernel, path, info = _start_without_connection_file(env, launch)
    assert path.name.startswith("kernel-") and path.suffix == ".json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert info["key"], "a created connection file must have a key"
    assert info["signature_scheme"] == "hmac-sha256"
    kc = kernel.client()
    try:
        _kernel_info(kc)
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    assert not path.exists(), "the kernel must remove the connection file it created"


def test_no_connection_file_logs_how_to_connect(env: dict[str, str], launch: Launch) -> None:
    kernel, path, _ = _start_without_connection_file(env, launch)
    kc = kernel.client()
    try:
        _kernel_info(kc)  # the kernel serves, so its startup logging is done
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    stderr = kernel.stderr
    assert "jupyter console --existing" in stderr, stderr
    assert str(path) in stderr


def test_sigterm_removes_a_created_connection_file(env: dict[str, str], launch: Launch) -> None:
    kernel, path, _ = _start_without_connection_file(env, launch)
    kc = kernel.client()
    try:
        _kernel_info(kc)
    finally:
        kc.stop_channels()
    kernel.popen.terminate()
    kernel.wait(TIMEOUT)
    assert not path.exists(), "a kernel stopped with SIGTERM must remove the connection file it created"


def test_help_documents_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fastkernel", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "-f" in result.stdout
    assert "--allow-insecure" in result.stdout
    assert "connection" in result.stdout.lower()


def _run_sleeping_cell(kc: BlockingKernelClient) -> None:
    """Start a 60 s cell and return once it is running."""
    msg_id = kc.execute("print('sleeping', flush=True)\nimport time\ntime.sleep(60)")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        validate(msg)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            return
    pytest.fail("the cell did not start")


def test_sigterm_during_a_cell_stops_the_kernel_cleanly(env: dict[str, str], launch: Launch) -> None:
    kernel, path, _ = _start_without_connection_file(env, launch)
    kc = kernel.client()
    try:
        _run_sleeping_cell(kc)
        kernel.popen.terminate()
        assert kernel.wait(timeout=5) == 0, kernel.stderr
    finally:
        kc.stop_channels()
    assert not path.exists()


def test_kernel_exits_when_its_launcher_dies_even_during_a_cell(tmp_path: Path, launch: Launch) -> None:
    path = tmp_path / "kernel.json"
    write_connection_file(path)
    # A launcher process starts the kernel as jupyter_client does (JPY_PARENT_PID), then is killed.
    kernel = launch(connection_file=path, launcher="jpy")
    kc = kernel.client()
    _run_sleeping_cell(kc)
    kernel.popen.kill()  # the launcher
    kernel.popen.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + 5  # checked once a second
    while pid_alive(kernel.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(kernel.pid), "the orphaned kernel kept running"
