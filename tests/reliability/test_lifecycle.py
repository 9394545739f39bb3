"""The kernel process's life: it dies with its launcher, ends its children, and names a crash.

Each test starts kernels of its own, as a frontend would (a launcher process, or
jupyter_client's KernelManager), and measures what a user would notice: how long an orphaned
kernel or a shut down one stays around, whether processes started by cells survive it, and
what its stderr says when a cell crashes it. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from tests.conftest import KERNEL_NAME
from tests.e2e.harness import KernelHarness
from tests.spec import validate

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds processes through /proc")

TIMEOUT = 20
ORPHAN_EXIT_BOUND = 5.0  # the parent is checked once a second; then a normal shutdown
STUCK_ORPHAN_EXIT_BOUND = 9.0  # plus ORPHAN_EXIT_S (3 s) when the cell ignores KeyboardInterrupt
SHUTDOWN_BOUND = 1.0  # an idle kernel without children, from shutdown_request to process exit
CHILDREN_BOUND = 5.0  # plus the 1 s grace before SIGKILL and the scans of /proc

# A frontend stand-in: starts the kernel (directly, or through a shell that stays as its parent),
# prints the pid of the process it started, and waits to be killed.
LAUNCHER = r"""
import os, subprocess, sys
mode, connection_file, stderr_path = sys.argv[1:4]
env = dict(os.environ)
env.pop("JPY_PARENT_PID", None)
if mode in ("jpy", "wrapper"):
    env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client does
kernel = [sys.executable, "-m", "fastkernel", "-f", connection_file, "--history-file=:memory:"]
if mode == "wrapper":  # not the last command, so sh forks the kernel and stays its parent
    kernel = ["sh", "-c", '"$@"; echo "kernel ended" >&2', "sh", *kernel]
with open(stderr_path, "ab") as stderr:
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen(kernel, env=env, stderr=stderr, **quiet)
print(proc.pid, flush=True)
sys.stdin.read()
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


def wait_gone(pids: list[int], timeout: float, what: str, log: Path | None = None) -> float:
    """Poll until no pid in ``pids`` runs; return the seconds it took, fail after ``timeout``."""
    start = time.monotonic()
    while any(alive(pid) for pid in pids):
        if time.monotonic() - start > timeout:
            running = [pid for pid in pids if alive(pid)]
            detail = log.read_text(errors="replace") if log is not None else ""
            pytest.fail(f"{what}: still running after {timeout} s: {running}\n{detail}")
        time.sleep(0.02)
    return time.monotonic() - start


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def write_connection_file(path: Path) -> None:
    channels = ("shell", "iopub", "stdin", "control", "hb")
    info = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "key": secrets.token_hex(16),
        "signature_scheme": "hmac-sha256",
        **{f"{c}_port": 0 for c in channels},
    }
    path.write_text(json.dumps(info))
    path.chmod(0o600)  # the kernel refuses a connection file others can read


def connect(path: Path, stderr: Path) -> BlockingKernelClient:
    """A client of the kernel using ``path``, once the kernel has written its ports there."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("shell_port") and info.get("hb_port"):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the kernel did not write its ports:\n{stderr.read_text(errors='replace')}")
        time.sleep(0.02)
    kc = BlockingKernelClient(connection_file=str(path))
    kc.load_connection_file()
    kc.start_channels()
    return kc


def run(kc: BlockingKernelClient, code: str) -> dict[str, Any]:
    """Execute ``code``; return the reply content (the cell's value as user_expressions['out'])."""
    msg_id = kc.execute(code, user_expressions={"out": "_out"} if "_out" in code else {})
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply["content"]


def value(content: dict[str, Any]) -> Any:
    return json.loads(content["user_expressions"]["out"]["data"]["text/plain"].strip("'"))


class Launcher:
    """A frontend stand-in process that starts a kernel (see LAUNCHER), to be SIGKILLed."""

    def __init__(self, mode: str, tmp_path: Path) -> None:
        self.connection_file = tmp_path / f"kernel-{mode}.json"
        self.stderr = tmp_path / f"kernel-{mode}.log"
        write_connection_file(self.connection_file)
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, mode, str(self.connection_file), str(self.stderr)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.started = int(self.proc.stdout.readline())  # the kernel, or the shell around it
        self.kc = connect(self.connection_file, self.stderr)
        self.kernel_pid = value(run(self.kc, "import os, json\n_out = json.dumps(os.getpid())"))

    def close(self) -> None:
        self.kc.stop_channels()
        kill_all([self.kernel_pid, self.started])
        self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[str], Launcher]]:
    started: list[Launcher] = []

    def start(mode: str) -> Launcher:
        launcher = Launcher(mode, tmp_path)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.close()


# -- the kernel outlives no launcher ---------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [
        "jpy",  # jupyter_client's way: the launcher is the parent and sets JPY_PARENT_PID
        "wrapper",  # a shell in between stays alive: only JPY_PARENT_PID names the frontend
        "plain",  # no JPY_PARENT_PID at all: the kernel notices it was reparented
    ],
)
def test_kernel_exits_when_its_launcher_is_killed(mode: str, launch: Callable[[str], Launcher]) -> None:
    launcher = launch(mode)
    if mode == "wrapper":
        assert launcher.started != launcher.kernel_pid, "the shell should have forked the kernel"
    launcher.proc.kill()
    launcher.proc.wait(timeout=TIMEOUT)
    took = wait_gone([launcher.kernel_pid], ORPHAN_EXIT_BOUND, "the orphaned kernel", launcher.stderr)
    print(f"\n{mode}: orphaned kernel gone {took:.2f} s after its launcher was killed")
    assert "is gone: shutting down" in launcher.stderr.read_text()
    if mode == "wrapper":  # the shell in between ends with the kernel
        wait_gone([launcher.started], ORPHAN_EXIT_BOUND, "the wrapper shell")


def test_orphaned_kernel_exits_even_if_a_cell_ignores_interrupts(launch: Callable[[str], Launcher]) -> None:
    launcher = launch("plain")
    kc = launcher.kc
    cell = kc.execute(
        "import time\nprint('looping', flush=True)\n"
        "while True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass"
    )
    deadline = time.monotonic() + TIMEOUT
    while True:  # until the cell runs
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == cell and msg["msg_type"] == "stream":
            break
    launcher.proc.kill()
    launcher.proc.wait(timeout=TIMEOUT)
    took = wait_gone([launcher.kernel_pid], STUCK_ORPHAN_EXIT_BOUND, "the stuck orphan", launcher.stderr)
    print(f"\norphaned kernel with a cell ignoring interrupts gone after {took:.2f} s")
    assert "did not stop" in launcher.stderr.read_text()


# -- children end with the kernel --------------------------------------------------------

START_CHILDREN = r"""
import json, multiprocessing, os, subprocess, time
plain = subprocess.Popen(["sleep", "300"])
stubborn = subprocess.Popen(["sh", "-c", 'trap "" TERM; sleep 300; true'])
own_session = subprocess.Popen(["sleep", "301"], start_new_session=True)
worker = multiprocessing.Process(target=time.sleep, args=(300,))
worker.start()
background = !sleep 302 >/dev/null 2>&1 & echo $!
_out = json.dumps([plain.pid, stubborn.pid, own_session.pid, worker.pid, int(background[0])])
"""


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def harness() -> Iterator[KernelHarness]:
    kernel = KernelHarness.start()
    yield kernel
    kernel.close()


def _start_children(kernel: KernelHarness) -> list[int]:
    content = kernel.execute(START_CHILDREN, user_expressions={"out": "_out"}).content
    assert content["status"] == "ok", content
    pids: list[int] = json.loads(content["user_expressions"]["out"]["data"]["text/plain"].strip("'"))
    kernel_pid = kernel.km.provisioner.process.pid  # type: ignore[union-attr]
    grandchildren = [pid for pid in _descendants(kernel_pid) if pid not in pids]  # sh's sleep
    assert grandchildren, "the stubborn shell's sleep should be running"
    assert all(alive(pid) for pid in pids)
    return pids + grandchildren


def test_shutdown_ends_the_processes_cells_started(harness: KernelHarness) -> None:
    children = _start_children(harness)
    process = harness.km.provisioner.process  # type: ignore[union-attr]
    try:
        since = time.monotonic()
        msg_id = harness.send("shutdown_request", {"restart": False}, channel="control")
        reply = harness.get_reply(msg_id, channel="control", timeout=5)
        replied = time.monotonic() - since
        assert reply["content"]["status"] == "ok"
        process.wait(timeout=CHILDREN_BOUND)
        exited = time.monotonic() - since
        left = [pid for pid in children if alive(pid)]
        assert left == [], f"children outlived the kernel: {left}"
        # the SIGTERM-ignoring shell needed the SIGKILL after the grace period
        assert 0.9 < exited < CHILDREN_BOUND, exited
        print(f"\nshutdown with {len(children)} children: replied {replied:.3f} s, exited {exited:.2f} s")
    finally:
        kill_all(children)


def test_restart_ends_the_processes_cells_started(harness: KernelHarness) -> None:
    content = harness.execute(
        "import subprocess, json\n_out = json.dumps(subprocess.Popen(['sleep', '300']).pid)",
        user_expressions={"out": "_out"},
    ).content
    child = json.loads(content["user_expressions"]["out"]["data"]["text/plain"].strip("'"))
    try:
        harness.km.restart_kernel(now=False)
        took = wait_gone([child], CHILDREN_BOUND, "the child of the restarted kernel")
        print(f"\nrestart: child gone {took:.2f} s after restart_kernel returned")
        harness.kc.wait_for_ready(timeout=TIMEOUT)  # the new kernel serves
        assert harness.execute("1 + 1").content["status"] == "ok"
    finally:
        kill_all([child])


def test_idle_shutdown_exits_within_a_second(harness: KernelHarness) -> None:
    process = harness.km.provisioner.process  # type: ignore[union-attr]
    since = time.monotonic()
    msg_id = harness.send("shutdown_request", {"restart": False}, channel="control")
    harness.get_reply(msg_id, channel="control", timeout=5)
    assert process.wait(timeout=5) == 0
    took = time.monotonic() - since
    print(f"\nidle shutdown: process exited {took:.3f} s after shutdown_request")
    assert took < SHUTDOWN_BOUND


def test_shutdown_during_a_cell_interrupts_it_and_exits_quickly(harness: KernelHarness) -> None:
    process = harness.km.provisioner.process  # type: ignore[union-attr]
    cell = harness.kc.execute("print('started', flush=True)\nimport time\ntime.sleep(60)")
    harness.wait_for_iopub(lambda m: m["parent_header"].get("msg_id") == cell and m["msg_type"] == "stream")
    since = time.monotonic()
    msg_id = harness.send("shutdown_request", {"restart": False}, channel="control")
    harness.get_reply(msg_id, channel="control", timeout=5)
    assert process.wait(timeout=5) == 0
    took = time.monotonic() - since
    reply = harness.get_reply(cell, timeout=5)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    print(f"\nshutdown during a cell: process exited {took:.3f} s after shutdown_request")
    assert took < SHUTDOWN_BOUND


# -- a crash names the request -------------------------------------------------------------


def test_a_segfaulting_cell_is_named_on_stderr(tmp_path: Path) -> None:
    stderr_path = tmp_path / "kernel-stderr.log"
    km = KernelManager(kernel_name=KERNEL_NAME)
    with open(stderr_path, "wb") as stderr:
        km.start_kernel(stderr=stderr)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        msg_id = kc.execute("import ctypes\nctypes.string_at(0)")
        process = km.provisioner.process  # type: ignore[union-attr]
        code = process.wait(timeout=TIMEOUT)
        assert code == -signal.SIGSEGV, code
        assert not km.is_alive()
        text = stderr_path.read_text(errors="replace")
        assert "Fatal Python error: Segmentation fault" in text, text
        assert f"execute_request[msg_id={msg_id}]" in text, text
        assert "string_at" in text  # the Python stack of the crash
    finally:
        kc.stop_channels()
        km.cleanup_resources(restart=False) if not km.is_alive() else km.shutdown_kernel(now=True)


# -- the pieces, in this process -------------------------------------------------------------


def test_parent_watch_sees_a_changed_parent_and_ignores_a_stranger() -> None:
    from fastkernel.lifecycle import ParentWatch

    assert ParentWatch(None, os.getppid()).gone() is None
    assert "is gone" in (ParentWatch(None, os.getppid() + 1).gone() or "")
    stranger = subprocess.Popen(["sleep", "30"])
    try:  # JPY_PARENT_PID inherited from an unrelated process is not watched
        assert ParentWatch(stranger.pid, os.getppid()).frontend is None
    finally:
        stranger.kill()
        stranger.wait()
    grandparent = _ppid_of(os.getppid())
    if grandparent > 1:  # a frontend above a wrapper is watched, and alive
        watch = ParentWatch(grandparent, os.getppid())
        assert watch.frontend == grandparent
        assert watch.gone() is None


def _ppid_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rfind(b")") + 2 :].split()[1])


def test_crash_label_is_bounded_printable_ascii() -> None:
    import sys as sys_module

    from fastkernel.lifecycle import labelled_call

    names: list[str] = []

    def record(arg: int) -> int:
        names.append(sys_module._getframe(1).f_code.co_name)
        return arg + 1

    assert labelled_call("execute_request[msg_id=abc-1]", record, 1) == 2
    assert labelled_call("execute_request[msg_id=\n\x1b[2J\u00e9" + "x" * 500 + "]", record, 1) == 2
    assert names[0] == "execute_request[msg_id=abc-1]"
    assert len(names[1]) <= 120 and names[1].isascii() and names[1].isprintable(), names[1]
