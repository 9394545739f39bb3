"""Starting kernels: every fastkernel process a test starts comes from :func:`start_kernel`.

``start_kernel()`` runs ``python -m fastkernel`` as jupyter_client launches a kernel (a session
of its own, ``JPY_PARENT_PID`` naming the test process) and returns a :class:`KernelProcess`,
which stops it as jupyter_client stops one (``shutdown_request`` on control, SIGTERM if it has
not exited 5 s later, then SIGKILL). Its options are what tests vary:

- ``argv``: command line arguments, after ``-f FILE``;
- ``history_file``: where the kernel keeps its input history (default ``:memory:``; None:
  no ``--history-file``, so the file in the Jupyter data dir, a temporary one in tests);
- ``env``: the kernel's environment (default: the tests' own);
- ``connection``: the connection file. By default one is written as jupyter_client writes it
  (:class:`NewConnectionFile`: loopback, a random key, free ports, mode 0600; ``ip`` and
  ``mode`` make an unsafe one); a ``Path`` is a file the test wrote itself (or none at that
  path); ``None`` starts the kernel without ``-f``;
- ``log``: the kernel's stderr goes to ``kernel-stderr.log`` in its directory, for tests that
  read it (otherwise to the tests' stderr, which pytest shows when a test fails);
- ``launcher``: a launcher process (:data:`LAUNCHER`) starts the kernel, for tests of a kernel
  whose frontend is killed.

A KernelProcess gives raw access (``popen``, ``pid``, ``stderr``), ``interrupt()``,
``restart()``, ``shutdown()``, and clients (``client()``, every message they read validated
against the spec) that it stops when it is closed. tests.harness.KernelHarness drives one;
the ``kernels`` fixture (tests/conftest.py) closes every kernel a test started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zmq
from jupyter_client import connect
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.session import Session

from tests.spec import validate

KERNEL_NAME = "fastkernel-test"  # the kernelspec frontends (console, server, nbclient) start
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
TIMEOUT = 20.0
SHUTDOWN_WAIT = 5.0  # jupyter_client's shutdown_wait_time: then SIGTERM, then SIGKILL
# Kernelspecs, the Jupyter data dir and the kernels' own directories, for this test run.
ROOT = Path(tempfile.mkdtemp(prefix="fastkernel-tests-"))

T = TypeVar("T")

# A frontend stand-in (``launcher=MODE``): starts the kernel command it is given (directly, or
# through a shell that stays as its parent), prints the pid of the process it started, and
# waits to be killed.
LAUNCHER = r"""
import os, subprocess, sys
mode, *kernel = sys.argv[1:]
env = dict(os.environ)
env.pop("JPY_PARENT_PID", None)
if mode in ("jpy", "wrapper"):
    env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client does
if mode == "wrapper":  # not the last command, so sh forks the kernel and stays its parent
    kernel = ["sh", "-c", '"$@"; echo "kernel ended" >&2', "sh", *kernel]
proc = subprocess.Popen(kernel, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
print(proc.pid, flush=True)
sys.stdin.read()
"""


def fastkernel_command(*args: str) -> list[str]:
    """``python -m fastkernel ARGS`` with the Python running the tests (so this checkout)."""
    return [sys.executable, "-m", "fastkernel", *args]


# -- kernelspecs, for kernels that frontends start --------------------------------------


def install_kernelspec(name: str, argv: list[str]) -> str:
    """Install a kernelspec ``name`` running ``argv -f {connection_file}`` where tests find it."""
    spec_dir = ROOT / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [*argv, "-f", "{connection_file}"],
        "display_name": f"{name} (tests)",
        "language": "python",
        "interrupt_mode": "signal",
        "kernel_protocol_version": "5.5",
        "metadata": {"supported_encryption": ["curve"]},  # as fastkernel's own kernelspec
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return name


def use_test_jupyter_dirs() -> None:
    """Install the test kernelspec on JUPYTER_PATH; point the Jupyter data dir into ROOT.

    Kernels started with no ``--history-file`` (by frontends, from their own kernelspecs)
    then write their history under a temporary data dir, never the user's.
    """
    install_kernelspec(KERNEL_NAME, fastkernel_command("--history-file=:memory:"))
    paths = [str(ROOT), *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(paths)
    os.environ["JUPYTER_DATA_DIR"] = str(ROOT / "data")


# -- connection files ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewConnectionFile:
    """A connection file for start_kernel() to write as jupyter_client writes one."""

    ip: str = "127.0.0.1"
    mode: int = 0o600  # the kernel refuses a file that other users may read or write
    curve: bool = False  # CurveZMQ keys in the file, as transport_encryption="required" writes them
    transport: str = "tcp"  # "ipc": socket files named after the connection file

    def write(self, path: Path) -> Path:
        public, secret = zmq.curve_keypair() if self.curve else (None, None)
        ip = str(path.with_suffix("")) + "-ipc" if self.transport == "ipc" else self.ip
        connect.write_connection_file(
            str(path),
            ip=ip,
            key=secrets.token_hex(16).encode(),
            transport=self.transport,
            curve_publickey=public,
            curve_secretkey=secret,
        )
        path.chmod(self.mode)
        return path


def write_connection_file(path: Path, **fields: Any) -> dict[str, Any]:
    """Write a connection file that lets the kernel choose its ports (port 0), mode 0600.

    ``fields`` replace or add entries. Return what was written.
    """
    info: dict[str, Any] = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "key": secrets.token_hex(16),
        "signature_scheme": "hmac-sha256",
        "kernel_name": KERNEL_NAME,
        **{f"{channel}_port": 0 for channel in CHANNELS},
        **fields,
    }
    path.write_text(json.dumps(info))
    path.chmod(0o600)  # as Jupyter writes them; a file open to others is refused
    return info


def read_ports(path: Path) -> dict[str, Any] | None:
    """The connection file at ``path`` once it holds all five ports, else None."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(info, dict) and all(info.get(f"{channel}_port") for channel in CHANNELS):
        return info
    return None


def curve_client(sock: zmq.Socket[Any], info: dict[str, Any]) -> None:
    """Make ``sock`` a CurveZMQ client of the kernel when ``info`` has its keys (as jupyter_client
    does: the client uses the key pair of the connection file, the server key its public key)."""
    if info.get("curve_publickey"):
        sock.curve_secretkey = info["curve_secretkey"].encode()
        sock.curve_publickey = info["curve_publickey"].encode()
        sock.curve_serverkey = info["curve_publickey"].encode()


def channel_url(info: dict[str, Any], channel: str) -> str:
    separator = "-" if info["transport"] == "ipc" else ":"
    return f"{info['transport']}://{info['ip']}{separator}{info[f'{channel}_port']}"


# -- processes -------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: os.kill said it exists
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


class ValidatingClient(BlockingKernelClient):
    """A jupyter_client client that validates every message its ``get_*_msg`` return.

    Like a client that KernelManager makes, it asks the kernel's process whether the kernel is
    alive (``is_alive``, ``wait_for_ready``), not the heartbeat, which a loaded machine delays.
    """

    kernel_alive: Callable[[], bool] | None = None

    async def _async_is_alive(self) -> bool:
        if self.kernel_alive is not None:
            return self.kernel_alive()
        return bool(await super()._async_is_alive())

    def get_shell_msg(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return _validated(super().get_shell_msg(*args, **kwargs))

    def get_iopub_msg(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return _validated(super().get_iopub_msg(*args, **kwargs))

    def get_stdin_msg(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return _validated(super().get_stdin_msg(*args, **kwargs))

    def get_control_msg(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return _validated(super().get_control_msg(*args, **kwargs))


def _validated(msg: dict[str, Any]) -> dict[str, Any]:
    validate(msg)
    return msg


class KernelProcess:
    """A fastkernel process started by :func:`start_kernel`, and the clients made for it."""

    def __init__(
        self,
        command: list[str],
        *,
        connection_file: Path | None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        launcher: str | None = None,
    ) -> None:
        self.command = command
        self.connection_file = connection_file  # None: started without one (it makes its own)
        self.env = dict(os.environ) if env is None else env
        self.log_path = log
        self.launcher = launcher
        self.clients: list[BlockingKernelClient] = []
        self.remove_on_close: Path | None = None  # what start_kernel wrote: a file or directory
        # The process this test started (the kernel, or its launcher); the kernel's pid (with a
        # launcher: of what the launcher started, the kernel or the shell around it).
        self.popen, self.pid = self._launch()

    def _launch(self) -> tuple[subprocess.Popen[bytes], int]:
        stderr = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 (closed below)
        try:
            if self.launcher is None:
                env = {**self.env, "JPY_PARENT_PID": str(os.getpid())}
                popen = subprocess.Popen(
                    self.command, env=env, stdin=subprocess.DEVNULL, stderr=stderr, start_new_session=True
                )
                return popen, popen.pid
            launcher = [sys.executable, "-c", LAUNCHER, self.launcher, *self.command]
            popen = subprocess.Popen(
                launcher, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
            )
            assert popen.stdout is not None
            return popen, int(popen.stdout.readline())
        finally:
            if stderr is not None:
                stderr.close()

    # -- what a test observes -----------------------------------------------------------

    @property
    def stderr(self) -> str:
        """The kernel's log so far (with ``log=True``; else empty)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def alive(self) -> bool:
        return pid_alive(self.pid) if self.launcher else self.popen.poll() is None

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit code of the process this test started, once it has exited by itself."""
        return self.popen.wait(timeout=timeout)

    def wait_for(self, condition: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
        """Poll ``condition`` until it returns something truthy; fail, with the kernel's log,
        if the kernel exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if not self.alive():
                pytest.fail(f"kernel exited ({self.popen.poll()}) before {what}:\n{self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.stderr}")
            time.sleep(0.02)

    def connection_info(self) -> dict[str, Any]:
        """The connection file, once the kernel has its five ports (it writes those it chose)."""
        path = self.connection_file
        assert path is not None, "started without a connection file: set connection_file"
        return self.wait_for(lambda: read_ports(path), "the ports in the connection file")

    def client(self, **channels: bool) -> BlockingKernelClient:
        """A started client with a session (so zmq identities) of its own.

        ``channels`` are start_channels' arguments (``iopub=False``, ...). Every message read
        with its ``get_*_msg`` is validated; the client is stopped when the kernel is closed.
        """
        kc = ValidatingClient()
        kc.kernel_alive = self.alive
        kc.load_connection_info(self.connection_info())
        kc.start_channels(**channels)
        self.clients.append(kc)
        return kc

    # -- what a frontend does -----------------------------------------------------------

    def interrupt(self) -> None:
        """SIGINT to the kernel's process group, as jupyter_client sends it (interrupt_mode: signal)."""
        os.killpg(self.pid, signal.SIGINT)

    def shutdown(self, restart: bool = False) -> int | None:
        """Stop the kernel as jupyter_client does; return its exit code (None: still running)."""
        if self.popen.poll() is None:
            self._send_shutdown_request(restart)
            for stop in (lambda: None, self.popen.terminate, self.popen.kill):
                stop()
                try:
                    return self.popen.wait(timeout=SHUTDOWN_WAIT)
                except subprocess.TimeoutExpired:
                    continue
        return self.popen.poll()

    def _send_shutdown_request(self, restart: bool) -> None:
        """``shutdown_request`` on control from a socket of its own, as KernelManager sends it."""
        info = read_ports(self.connection_file) if self.connection_file else None
        if info is None:
            return
        session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        curve_client(sock, info)
        try:
            sock.connect(channel_url(info, "control"))
            session.send(sock, "shutdown_request", {"restart": restart})
        finally:
            sock.close(linger=1000)  # long enough for the request to leave
            ctx.term()

    def restart(self) -> None:
        """As jupyter_client restarts a kernel: shut it down (``restart: true``), then start the
        same command on the same connection file."""
        self.shutdown(restart=True)
        self.popen, self.pid = self._launch()

    def kill(self) -> None:
        """SIGKILL to the kernel and to the process this test started."""
        if pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=TIMEOUT)

    def close(self) -> None:
        """Stop the clients and the kernel (politely, but a launched one is killed, and its
        launcher); remove what start_kernel wrote."""
        for kc in self.clients:
            kc.stop_channels()
        self.clients.clear()
        if self.launcher is None:
            self.shutdown()
        else:
            self.kill()
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                pipe.close()
        if self.remove_on_close is not None and self.remove_on_close.is_dir():
            shutil.rmtree(self.remove_on_close, ignore_errors=True)
        elif self.remove_on_close is not None:
            self.remove_on_close.unlink(missing_ok=True)


def start_kernel(
    *argv: str,
    env: dict[str, str] | None = None,
    connection: NewConnectionFile | Path | None = NewConnectionFile(),  # noqa: B008 (frozen)
    history_file: str | None = ":memory:",
    log: bool = False,
    launcher: str | None = None,
    directory: Path | None = None,
) -> KernelProcess:
    """Start ``python -m fastkernel`` (see the module's docstring for the options).

    ``directory`` holds the connection file written and the log (default: a new temporary
    one, removed when the kernel is closed). The caller closes the kernel: ``kernels``
    fixture, KernelHarness, or ``close()``.
    """
    made = directory is None
    directory = Path(tempfile.mkdtemp(dir=ROOT, prefix="kernel-")) if directory is None else directory
    written = isinstance(connection, NewConnectionFile)
    path = (
        connection.write(directory / "kernel.json")
        if isinstance(connection, NewConnectionFile)
        else connection
    )
    history_args = [f"--history-file={history_file}"] if history_file is not None else []
    file_args = ["-f", str(path)] if path is not None else []
    command = fastkernel_command(*history_args, *file_args, *argv)
    log_path = directory / "kernel-stderr.log" if log else None
    kernel = KernelProcess(command, connection_file=path, env=env, log=log_path, launcher=launcher)
    kernel.remove_on_close = directory if made else path if written else None
    return kernel


class Kernels:
    """The kernels one test starts, each in a directory of its own under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[KernelProcess] = []

    def start(self, *argv: str, **options: Any) -> KernelProcess:
        """:func:`start_kernel` with these arguments; the kernel is closed with the others."""
        directory = self.root / f"kernel-{len(self.started)}"
        directory.mkdir()
        kernel = start_kernel(*argv, directory=directory, **options)
        self.started.append(kernel)
        return kernel

    def close(self) -> None:
        """Close every kernel, even when closing one of them fails (that error is raised after)."""
        errors = []
        for kernel in self.started:
            try:
                kernel.close()
            except Exception as err:
                errors.append(err)
        self.started.clear()
        if errors:
            raise errors[0]


def remove_test_dirs() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
