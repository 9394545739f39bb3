"""The kernel process's life: it dies with its launcher, ends its children, and names a crash.

Each test starts kernels of its own (tests.kernels: through a launcher process, or as
jupyter_client starts them), and measures what a user would notice: how long an orphaned
kernel or a shut down one stays around, whether processes started by cells survive it, and
what its stderr says when a cell crashes it. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.harness import KernelHarness
from tests.kernels import KernelProcess, Kernels, pid_alive, write_connection_file
from tests.spec import validate

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds processes through /proc")

TIMEOUT = 20
ORPHAN_EXIT_BOUND = 5.0  # the parent is checked once a second; then a normal shutdown
STUCK_ORPHAN_EXIT_BOUND = 9.0  # plus ORPHAN_EXIT_S (3 s) when the cell ignores KeyboardInterrupt
CHILDREN_BOUND = 5.0  # plus the 1 s grace before SIGKILL and the scans of /proc


def wait_gone(pids: list[int], timeout: float, what: str, kernel: KernelProcess | None = None) -> float:
    """Poll until no pid in ``pids`` runs; return the seconds it took, fail after ``timeout``
    (with ``kernel``'s log)."""
    start = time.monotonic()
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() - start > timeout:
            running = [pid for pid in pids if pid_alive(pid)]
            log = kernel.stderr if kernel is not None else ""
            pytest.fail(f"{what}: still running after {timeout} s: {running}\n{log}")
        time.sleep(0.02)
    return time.monotonic() - start


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def run(kc: BlockingKernelClient, code: str) -> dict[str, Any]:
    """Execute ``code``; return the reply content (the cell's value as user_expressions['out'])."""
    msg_id = kc.execute(code, user_expressions={"out": "_out"} if "_out" in code else {})
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply["content"]


def value(content: dict[str, Any]) -> Any:
    return json.loads(content["user_expressions"]["out"]["data"]["text/plain"].strip("'"))


@dataclass
class Launched:
    """A kernel started by a launcher process (tests.kernels.LAUNCHER), to be SIGKILLed."""

    process: KernelProcess  # popen: the launcher; pid: what it started (the kernel, or a shell)
    kc: BlockingKernelClient
    kernel_pid: int  # the kernel's own pid, asked of the kernel


@pytest.fixture
def launch(kernels: Kernels, tmp_path: Path) -> Iterator[Callable[[str], Launched]]:
    """Start a kernel through a launcher in the given mode (see LAUNCHER); its connection file
    has port 0 (the kernel writes the ports it binds)."""
    kernel_pids: list[int] = []

    def start(mode: str) -> Launched:
        path = tmp_path / f"kernel-{mode}.json"
        write_connection_file(path)
        process = kernels.start(connection=path, log=True, launcher=mode)
        kc = process.client()
        kernel_pid = value(run(kc, "import os, json\n_out = json.dumps(os.getpid())"))
        kernel_pids.append(kernel_pid)
        return Launched(process, kc, kernel_pid)

    yield start
    kill_all(kernel_pids)  # behind a wrapper shell, the kernel is not the launcher's child


# -- the kernel outlives no launcher ---------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [
        "jpy",  # jupyter_client's way: the launcher is the parent and sets JPY_PARENT_PID
        "wrapper",  # a shell in between stays alive: only JPY_PARENT_PID names the frontend
        "plain",  # no JPY_PARENT_PID at all: the kernel notices it was reparented
    ],
)
def test_kernel_exits_when_its_launcher_is_killed(mode: str, launch: Callable[[str], Launched]) -> None:
    launcher = launch(mode)
    started = launcher.process.pid  # the kernel, or the shell around it
    if mode == "wrapper":
        assert started != launcher.kernel_pid, "the shell should have forked the kernel"
    launcher.process.popen.kill()
    launcher.process.popen.wait(timeout=TIMEOUT)
    took = wait_gone([launcher.kernel_pid], ORPHAN_EXIT_BOUND, "the orphaned kernel", launcher.process)
    print(f"\n{mode}: orphaned kernel gone {took:.2f} s after its launcher was killed")
    assert "is gone: shutting down" in launcher.process.stderr
    if mode == "wrapper":  # the shell in between ends with the kernel
        wait_gone([started], ORPHAN_EXIT_BOUND, "the wrapper shell")


def test_orphaned_kernel_exits_even_if_a_cell_ignores_interrupts(launch: Callable[[str], Launched]) -> None:
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
    launcher.process.popen.kill()
    launcher.process.popen.wait(timeout=TIMEOUT)
    took = wait_gone([launcher.kernel_pid], STUCK_ORPHAN_EXIT_BOUND, "the stuck orphan", launcher.process)
    print(f"\norphaned kernel with a cell ignoring interrupts gone after {took:.2f} s")
    assert "did not stop" in launcher.process.stderr


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
    """A kernel of its own, its log (what it did at shutdown) in a file."""
    with KernelHarness.start(log=True) as kernel:
        yield kernel


def _start_children(kernel: KernelHarness) -> list[int]:
    content = kernel.execute(START_CHILDREN, user_expressions={"out": "_out"}).content
    assert content["status"] == "ok", content
    pids: list[int] = json.loads(content["user_expressions"]["out"]["data"]["text/plain"].strip("'"))
    grandchildren = [pid for pid in _descendants(kernel.process.pid) if pid not in pids]  # sh's sleep
    assert grandchildren, "the stubborn shell's sleep should be running"
    assert all(pid_alive(pid) for pid in pids)
    return pids + grandchildren


def test_shutdown_ends_the_processes_cells_started(harness: KernelHarness) -> None:
    children = _start_children(harness)
    process = harness.process.popen
    try:
        since = time.monotonic()
        msg_id = harness.send("shutdown_request", {"restart": False}, channel="control")
        reply = harness.get_reply(msg_id, channel="control", timeout=5)
        replied = time.monotonic() - since
        assert reply["content"]["status"] == "ok"
        process.wait(timeout=CHILDREN_BOUND)
        exited = time.monotonic() - since
        left = [pid for pid in children if pid_alive(pid)]
        assert left == [], f"children outlived the kernel: {left}"
        # the SIGTERM-ignoring shell needed the SIGKILL after the grace period
        log = harness.process.stderr
        assert "child process(es) still running after 1.0 s" in log, log
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
        harness.process.restart()
        took = wait_gone([child], CHILDREN_BOUND, "the child of the restarted kernel")
        print(f"\nrestart: child gone {took:.2f} s after the restart returned")
        harness.kc.wait_for_ready(timeout=TIMEOUT)  # the new kernel serves
        assert harness.execute("1 + 1").content["status"] == "ok"
    finally:
        kill_all([child])


def test_idle_shutdown_exits_at_once(harness: KernelHarness) -> None:
    process = harness.process.popen
    since = time.monotonic()
    msg_id = harness.send("shutdown_request", {"restart": False}, channel="control")
    harness.get_reply(msg_id, channel="control", timeout=5)
    assert process.wait(timeout=5) == 0
    took = time.monotonic() - since
    print(f"\nidle shutdown: process exited {took:.3f} s after shutdown_request")
    assert "child process" not in harness.process.stderr, "no child to end, so no grace period to wait"


def test_shutdown_during_a_cell_interrupts_it_and_exits_at_once(harness: KernelHarness) -> None:
    process = harness.process.popen
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
    assert "child process" not in harness.process.stderr, "no child to end, so no grace period to wait"


# -- a crash names the request -------------------------------------------------------------


def test_a_segfaulting_cell_is_named_on_stderr(kernels: Kernels) -> None:
    kernel = kernels.start(log=True)
    kc = kernel.client()
    kc.wait_for_ready(timeout=TIMEOUT)
    msg_id = kc.execute("import ctypes\nctypes.string_at(0)")
    code = kernel.wait(timeout=TIMEOUT)
    assert code == -signal.SIGSEGV, code
    assert not kernel.alive()
    text = kernel.stderr
    assert "Fatal Python error: Segmentation fault" in text, text
    assert f"execute_request[msg_id={msg_id}]" in text, text
    assert "string_at" in text  # the Python stack of the crash


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
