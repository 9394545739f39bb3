"""jupyter console's up arrow recalls a cell typed in an earlier session (history_request tail)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.frontends import test_console
from tests.frontends.test_console import Console, _exit_pt_console
from tests.kernels import install_kernelspec

pytestmark = pytest.mark.timeout(90)

# Without --history-file=:memory: (the test kernelspec's), the kernel keeps its history in the
# Jupyter data dir, which Console points into tmp_path.
FILE_KERNEL = install_kernelspec("fastkernel-history-console", [sys.executable, "-m", "fastkernel"])


def test_up_arrow_recalls_the_previous_sessions_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_console, "KERNEL_NAME", FILE_KERNEL)
    first = Console(tmp_path)
    try:
        first.start()
        first.learn_kernel_pid(2)
        first.run("answer = 4242", 3)
        _exit_pt_console(first)
    finally:
        first.close()
    assert (tmp_path / "data" / "fastkernel" / "history.sqlite").exists()

    second = Console(tmp_path)
    try:
        second.start()
        second.learn_kernel_pid(2)  # now the last cell: the up arrow has to go past it
        second.child.send("\x1b[A")
        second.child.send("\x1b[A")
        second.child.send("\r")
        second.prompt(3)
        output = second.run("print(answer + 1)", 4)  # defined only if the recalled cell ran
        assert "4243" in output
        _exit_pt_console(second)
    finally:
        second.close()
