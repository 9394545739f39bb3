"""``jupyter console --kernel fastkernel-test`` driven through a pseudo-terminal.

Two console modes are used:

* ``--simple-prompt``: a line-at-a-time ``input()`` prompt. Deterministic, so it carries the
  main round trip and the clean exit through Ctrl-D.
* the prompt_toolkit prompt with ``TERM=dumb``: the console's real key bindings, which ask the
  kernel ``is_complete`` on every Enter to decide between running the cell and continuing it.

Every test learns the kernel's pid (the console's child process, confirmed by the kernel's
own ``os.getpid()``), checks that the process is gone after the console exits, and kills it in
cleanup if the console failed to.

A race in jupyter console itself: it sends the first execute_request as soon as the kernel
answers kernel_info on shell, without waiting for its iopub SUB socket to be subscribed (it
ignores iopub_welcome). The console launches the kernel and connects at once; every connect is
refused until the kernel binds, and libzmq retries each socket on its own 100 ms timer, so the
SUB can come up to ~100 ms after the DEALER. fastkernel answers within milliseconds of binding,
so a cell typed in that window has its iopub output dropped by the XPUB (no subscriber yet) and
the console waits for ``status: idle`` forever. A human cannot type that fast; a pexpect script
can. :meth:`Console.start` therefore waits until the console's iopub TCP connection is up
before typing anything.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.frontends.conftest import (
    BIN_DIR,
    child_pids,
    frontend_env,
    tcp_established,
    wait_for,
    wait_pid_gone,
)
from tests.kernels import KERNEL_NAME, pid_alive

TIMEOUT = 30
ORPHAN_TIMEOUT = 5  # ipykernel notices a dead parent within about a second
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """Terminal output without colour escapes and carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


pytestmark = pytest.mark.timeout(60)


class Console:
    """One ``jupyter console`` process on a pty, with the pid of the kernel it started."""

    def __init__(self, tmp_path: Path, *args: str, colors: bool = False) -> None:
        self.runtime_dir = tmp_path / "runtime"
        env = frontend_env(
            TERM="dumb",
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
            JUPYTER_DATA_DIR=str(tmp_path / "data"),
            IPYTHONDIR=str(tmp_path / "ipython"),
            NO_COLOR="" if colors else "1",  # the kernel inherits it: coloured tracebacks or not
        )
        self.child = pexpect.spawn(
            str(BIN_DIR / "jupyter-console"),
            ["--kernel", KERNEL_NAME, *args],
            env=env,
            cwd=str(tmp_path),
            encoding="utf-8",
            codec_errors="replace",
            timeout=TIMEOUT,
            echo=False,
            dimensions=(40, 200),
        )
        self.kernel_pid: int | None = None

    def start(self) -> str:
        """Wait for ``In [1]:`` and for the console's iopub connection; return the banner."""
        self.prompt(1)
        banner = plain(self.child.before)
        children = child_pids(self.child.pid)
        assert len(children) == 1, f"expected one kernel process under the console, got {children}"
        self.kernel_pid = children[0]
        connection_file = self.runtime_dir / f"kernel-{self.child.pid}.json"
        iopub_port = json.loads(connection_file.read_text())["iopub_port"]
        wait_for(lambda: tcp_established(iopub_port), TIMEOUT, "the console's iopub connection")
        return banner

    def prompt(self, n: int) -> None:
        self.child.expect_exact(f"In [{n}]: ")

    def run(self, line: str, next_prompt: int) -> str:
        """Send one line, wait for prompt ``next_prompt``; return what was printed in between."""
        self.child.sendline(line)
        self.prompt(next_prompt)
        return plain(self.child.before)

    def learn_kernel_pid(self, next_prompt: int) -> None:
        output = self.run("import os; print('KERNEL', 'PID', os.getpid())", next_prompt)
        match = re.search(r"KERNEL PID (\d+)", output)
        assert match, output
        assert int(match.group(1)) == self.kernel_pid, "the console's child is not the kernel"

    def expect_shutdown(self, announced: bool = False) -> None:
        """The console exits by itself, and shuts its kernel down on the way out."""
        if not announced:
            self.child.expect_exact("Shutting down kernel")
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.child.exitstatus == 0, (self.child.exitstatus, self.child.signalstatus)
        assert self.kernel_pid is not None
        assert wait_pid_gone(self.kernel_pid, TIMEOUT), f"kernel {self.kernel_pid} outlived the console"

    def close(self) -> None:
        if self.kernel_pid is None and self.child.isalive():
            children = child_pids(self.child.pid)  # the test failed before start() found it
            self.kernel_pid = children[0] if children else None
        if self.child.isalive():
            self.child.close(force=True)
        if self.kernel_pid is not None and pid_alive(self.kernel_pid):
            os.kill(self.kernel_pid, signal.SIGTERM)
            if not wait_pid_gone(self.kernel_pid, 5):
                os.kill(self.kernel_pid, signal.SIGKILL)


@pytest.fixture
def simple_console(tmp_path: Path) -> Iterator[Console]:
    console = Console(tmp_path, "--simple-prompt")
    try:
        yield console
    finally:
        console.close()


@pytest.fixture
def pt_console(tmp_path: Path) -> Iterator[Console]:
    """The prompt_toolkit prompt (dumb-terminal rendering): real key bindings, is_complete on Enter."""
    console = Console(tmp_path)
    try:
        yield console
    finally:
        console.close()


def test_console_round_trip_and_ctrl_d_exit(simple_console: Console) -> None:
    console = simple_console
    banner = console.start()
    assert "fastkernel" in banner  # the kernel's banner, from kernel_info_reply

    output = console.run("print(6*7)", 2)
    assert output.strip() == "42"

    output = console.run("1+1", 3)
    assert output.strip() == "Out[2]: 2"

    output = console.run("import sys; print('to stderr', file=sys.stderr)", 4)
    assert "to stderr" in output

    output = console.run("1/0", 5)
    assert "ZeroDivisionError" in output
    assert "Cell In[4], line 1" in output

    console.learn_kernel_pid(6)

    console.child.sendeof()  # Ctrl-D at an empty prompt
    console.child.expect_exact("Do you really want to exit ([y]/n)?")
    console.child.sendline("y")
    console.expect_shutdown()


def test_console_shows_coloured_tracebacks_and_xmode(tmp_path: Path) -> None:
    console = Console(tmp_path, "--simple-prompt", colors=True)
    try:
        console.start()
        console.child.sendline("def half_inv(x): return 1 / (x / 2)")
        console.prompt(2)
        console.child.sendline("half_inv(0)")
        console.prompt(3)
        raw = console.child.before
        assert "\x1b[1;31mZeroDivisionError\x1b[0m" in raw and "\x1b[1;32m----> 1\x1b[0m" in raw
        text = plain(raw)
        assert "Cell In[2], line 1\n----> 1 half_inv(0)" in text
        assert "Cell In[1], line 1, in half_inv" in text
        assert text.rstrip().endswith("ZeroDivisionError: float division by zero")
        assert console.run("%xmode Minimal", 4).strip() == "Exception reporting mode: Minimal"
        assert console.run("half_inv(0)", 5).strip() == "ZeroDivisionError: float division by zero"
    finally:
        console.close()


def test_console_exit_call_ends_session(simple_console: Console) -> None:
    console = simple_console
    console.start()
    console.learn_kernel_pid(2)
    console.child.sendline("exit()")
    index = console.child.expect_exact(["Shutting down kernel", "In [3]: "])
    assert index == 0, f"console kept running after exit(); it printed:\n{plain(console.child.before)}"
    console.expect_shutdown(announced=True)


def _exit_pt_console(console: Console) -> None:
    """Ctrl-D in the prompt_toolkit prompt.

    Ctrl-D only reaches prompt_toolkit once it has put the tty in raw mode; before that, the
    tty's line discipline eats it. A typed character echoed back proves the prompt is live.
    """
    console.child.send("z")
    console.child.expect_exact("z")
    console.child.send("\x7f")  # backspace: the buffer is empty again
    console.child.sendcontrol("d")
    console.child.expect_exact("Do you really want to exit ([y]/n)?")
    console.child.sendline("y")
    console.expect_shutdown()


def test_pt_console_runs_cells_and_multiline_blocks(pt_console: Console) -> None:
    console = pt_console
    console.start()
    console.learn_kernel_pid(2)

    output = console.run("print(6*7)", 3)
    assert "42" in output

    # An unclosed bracket is incomplete: the console asks for more instead of running it.
    console.child.sendline("total = sum([1,")
    console.child.sendline("2, 3])")
    console.prompt(4)
    output = console.run("total", 5)
    assert "Out[4]: 6" in output

    console.child.sendline("def double(x):")
    console.child.sendline("return 2 * x")  # the console inserted the indent that is_complete gave
    console.child.sendline("")  # one blank line ends the block, as in IPython
    console.prompt(6)
    output = console.run("double(21)", 7)
    assert "Out[6]: 42" in output

    _exit_pt_console(console)


def test_pt_console_block_ends_at_first_blank_line(pt_console: Console) -> None:
    """Enter on an empty line ends an indented block, as in IPython.

    The console auto-indents each continuation line. If one blank line ends the ``if False:``
    block, ``x = 7`` runs at top level and ``x`` is 7; if the console still continues the block,
    ``x = 7`` lands inside ``if False:`` and ``x`` is never set. The extra blank lines let the
    block end either way, so the test needs no timeouts to tell the two apart.
    """
    console = pt_console
    console.start()
    console.learn_kernel_pid(2)
    for line in ["if False:", "x = 5", "", "x = 7", "", "", ""]:
        console.child.sendline(line)
    console.child.sendline("print('x', 'is', globals().get('x'))")
    console.child.expect(r"x is (\S+)\r?\n")
    value = console.child.match.group(1)
    console.child.expect_exact("In [")  # the next prompt: the console is idle again
    _exit_pt_console(console)
    assert value == "7"


def test_kernel_exits_when_console_is_killed(simple_console: Console) -> None:
    console = simple_console
    console.start()
    console.learn_kernel_pid(2)
    assert console.kernel_pid is not None
    console.child.kill(signal.SIGKILL)
    console.child.wait()  # no EOF to expect: the orphaned kernel still holds the pty
    assert wait_pid_gone(console.kernel_pid, ORPHAN_TIMEOUT), "kernel still running after its frontend died"
