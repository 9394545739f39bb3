"""``python -m fastkernel`` started by hand: connection files, ports, transports, CLI errors."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.spec import validate

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
TIMEOUT = 10


class Launched:
    """A kernel process started by a test, its stderr going to a file."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.stderr_path = cwd / "kernel-stderr.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastkernel", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self._stderr.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "runtime"
    environ = dict(os.environ)
    environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    environ.pop("JPY_PARENT_PID", None)
    return environ


@pytest.fixture
def launch(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., Launched]]:
    started: list[Launched] = []

    def start(*args: str) -> Launched:
        kernel = Launched(list(args), tmp_path, env)
        started.append(kernel)
        return kernel

    yield start
    for kernel in started:
        kernel.close()


def _write_connection_file(path: Path, **overrides: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "key": secrets.token_hex(16),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "fastkernel-test",
        **{f"{c}_port": 0 for c in CHANNELS},
    }
    info.update(overrides)
    path.write_text(json.dumps(info))
    path.chmod(0o600)  # as Jupyter writes them; a file open to others is refused
    return info


def _wait_for(condition: Callable[[], Any], what: str, kernel: Launched, timeout: float = TIMEOUT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the kernel's stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if kernel.proc.poll() is not None:
            pytest.fail(f"kernel exited ({kernel.proc.returncode}) before {what}:\n{kernel.stderr}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}:\n{kernel.stderr}")


def _ports_written(path: Path) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if all(info.get(f"{c}_port") for c in CHANNELS):
            return info
        return None

    return check


def _client(path: Path) -> BlockingKernelClient:
    kc = BlockingKernelClient(connection_file=str(path))
    kc.load_connection_file()
    kc.start_channels()
    return kc


def _kernel_info(kc: BlockingKernelClient) -> dict[str, Any]:
    msg_id = kc.kernel_info()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    validate(reply, "kernel_info_reply", msg_id)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["implementation"] == "fastkernel"
    return reply


def _shutdown(kc: BlockingKernelClient, kernel: Launched) -> None:
    msg_id = kc.shutdown()
    reply = kc.control_channel.get_msg(timeout=TIMEOUT)
    validate(reply, "shutdown_reply", msg_id)
    assert kernel.wait() == 0, kernel.stderr


def test_port_zero_binds_free_ports_and_writes_them_back(
    tmp_path: Path, launch: Callable[..., Launched]
) -> None:
    path = tmp_path / "kernel.json"
    written = _write_connection_file(path, extra_field="kept")
    kernel = launch("-f", str(path))
    info = _wait_for(_ports_written(path), "the real ports in the connection file", kernel)
    ports = [info[f"{c}_port"] for c in CHANNELS]
    assert len(set(ports)) == 5, ports
    assert all(0 < p < 65536 for p in ports)
    assert info["key"] == written["key"]
    assert info["transport"] == "tcp"
    assert info["ip"] == "127.0.0.1"
    assert info["signature_scheme"] == "hmac-sha256"
    assert info["extra_field"] == "kept"
    kc = _client(path)
    try:
        _kernel_info(kc)
        assert kc.is_alive()
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    assert path.exists(), "a connection file the frontend wrote is the frontend's to remove"


def test_given_ports_are_used_and_file_left_alone(tmp_path: Path, launch: Callable[..., Launched]) -> None:
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
    _write_connection_file(path, **{f"{c}_port": p for c, p in zip(CHANNELS, ports, strict=True)})
    original = path.read_text()
    kernel = launch("-f", str(path))
    kc = _client(path)
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


def test_ipc_transport(tmp_path: Path, launch: Callable[..., Launched]) -> None:
    path = tmp_path / "kernel.json"
    ipc_base = tmp_path / "kipc"
    _write_connection_file(path, transport="ipc", ip=str(ipc_base))
    kernel = launch("-f", str(path))
    info = _wait_for(_ports_written(path), "the ipc ports in the connection file", kernel)
    assert info["transport"] == "ipc"
    assert info["ip"] == str(ipc_base)
    for c in CHANNELS:
        assert Path(f"{ipc_base}-{info[f'{c}_port']}").exists(), c
    kc = _client(path)
    try:
        _kernel_info(kc)
        assert kc.is_alive()
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()


def test_empty_key_is_refused(tmp_path: Path, launch: Callable[..., Launched]) -> None:
    path = tmp_path / "kernel.json"
    _write_connection_file(path, key="")
    kernel = launch("-f", str(path))
    code = kernel.wait()
    assert code != 0
    assert "--allow-insecure" in kernel.stderr, kernel.stderr
    assert "key" in kernel.stderr


def test_empty_key_with_allow_insecure(tmp_path: Path, launch: Callable[..., Launched]) -> None:
    path = tmp_path / "kernel.json"
    _write_connection_file(path, key="")
    kernel = launch("-f", str(path), "--allow-insecure")
    _wait_for(_ports_written(path), "the real ports in the connection file", kernel)
    kc = _client(path)
    try:
        assert kc.session.key == b""
        _kernel_info(kc)
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()


def test_missing_connection_file_is_a_clear_error(tmp_path: Path, launch: Callable[..., Launched]) -> None:
    path = tmp_path / "does-not-exist.json"
    kernel = launch("-f", str(path))
    assert kernel.wait() != 0
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
    tmp_path: Path, launch: Callable[..., Launched], content: str, words: list[str]
) -> None:
    path = tmp_path / "kernel.json"
    path.write_text(content)
    kernel = launch("-f", str(path))
    assert kernel.wait() != 0
    stderr = kernel.stderr
    for word in words:
        assert word in stderr, stderr
    assert "Traceback" not in stderr, stderr


def test_unknown_signature_scheme_is_a_clear_error(tmp_path: Path, launch: Callable[..., Launched]) -> None:
    path = tmp_path / "kernel.json"
    _write_connection_file(path, signature_scheme="hmac-nope")
    kernel = launch("-f", str(path))
    assert kernel.wait() != 0
    stderr = kernel.stderr
    assert "hmac-nope" in stderr, stderr
    assert "signature_scheme" in stderr
    assert "Traceback" not in stderr, stderr


def _runtime_files(runtime: Path) -> list[Path]:
    return sorted(runtime.glob("kernel-*.json")) if runtime.is_dir() else []


def _start_without_connection_file(
    env: dict[str, str], launch: Callable[..., Launched]
) -> tuple[Launched, Path, dict[str, Any]]:
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    kernel = launch()
    (path,) = _wait_for(lambda: _runtime_files(runtime), "a connection file in the runtime dir", kernel)
    info = _wait_for(_ports_written(path), "a complete connection file", kernel)
    return kernel, path, info


def test_no_connection_file_creates_one(env: dict[str, str], launch: Callable[..., Launched]) -> None:
    kernel, path, info = _start_without_connection_file(env, launch)
    assert path.name.startswith("kernel-") and path.suffix == ".json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert info["key"], "a created connection file must have a key"
    assert info["signature_scheme"] == "hmac-sha256"
    kc = _client(path)
    try:
        _kernel_info(kc)
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    assert not path.exists(), "the kernel must remove the connection file it created"


def test_no_connection_file_logs_how_to_connect(env: dict[str, str], launch: Callable[..., Launched]) -> None:
    kernel, path, _ = _start_without_connection_file(env, launch)
    kc = _client(path)
    try:
        _kernel_info(kc)  # the kernel serves, so its startup logging is done
        _shutdown(kc, kernel)
    finally:
        kc.stop_channels()
    stderr = kernel.stderr
    assert "jupyter console --existing" in stderr, stderr
    assert str(path) in stderr


def test_sigterm_removes_a_created_connection_file(
    env: dict[str, str], launch: Callable[..., Launched]
) -> None:
    kernel, path, _ = _start_without_connection_file(env, launch)
    kc = _client(path)
    try:
        _kernel_info(kc)
    finally:
        kc.stop_channels()
    kernel.proc.terminate()
    kernel.wait()
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


def test_sigterm_during_a_cell_stops_the_kernel_cleanly(
    env: dict[str, str], launch: Callable[..., Launched]
) -> None:
    kernel, path, _ = _start_without_connection_file(env, launch)
    kc = _client(path)
    try:
        _run_sleeping_cell(kc)
        kernel.proc.terminate()
        assert kernel.wait(timeout=5) == 0, kernel.stderr
    finally:
        kc.stop_channels()
    assert not path.exists()


def test_kernel_exits_when_its_launcher_dies_even_during_a_cell(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "kernel.json"
    _write_connection_file(path)
    # A launcher process that starts the kernel as jupyter_client does (JPY_PARENT_PID), reports
    # the kernel's pid, then waits to be killed.
    launcher_code = (
        "import os, subprocess, sys\n"
        "env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))\n"
        "quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'fastkernel', '-f', {str(path)!r}], env=env, **quiet)\n"
        "print(p.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", launcher_code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert launcher.stdout is not None
    kernel_pid = int(launcher.stdout.readline())
    try:
        deadline = time.monotonic() + TIMEOUT
        while not _ports_written(path)() and time.monotonic() < deadline:
            time.sleep(0.02)
        kc = _client(path)
        try:
            _run_sleeping_cell(kc)
            launcher.kill()
            launcher.wait(timeout=TIMEOUT)
            deadline = time.monotonic() + 5  # checked once a second
            while _pid_alive(kernel_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _pid_alive(kernel_pid), "the orphaned kernel kept running"
        finally:
            kc.stop_channels()
    finally:
        if _pid_alive(kernel_pid):
            os.kill(kernel_pid, 9)
        launcher.kill()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An exited child of the dead launcher is reaped by init; until then it is a zombie.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
