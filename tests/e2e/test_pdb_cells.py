"""pdb over stdin and the kernel's cells: cells named as the tracebacks name them (Cell In[n]),
stepping into a cell's last expression, and breakpoints in cells run by %%time and %%timeit."""

from __future__ import annotations

import sys

import pytest

from tests.e2e.dap import DapClient
from tests.e2e.test_pdb import PROMPT, debug_session
from tests.harness import Execution, KernelHarness, ok, result

pytestmark = pytest.mark.timeout(90)
# Python 3.13's pdb stops on the breakpoint() line itself, older ones on the line after it
TO_NEXT_LINE = ["n"] if sys.version_info >= (3, 13) else []


def session(kernel: KernelHarness, code: str, answers: list[str]) -> tuple[Execution, list[str]]:
    """debug_session, its answers starting on the line after the breakpoint() that stopped."""
    return debug_session(kernel, code, [*TO_NEXT_LINE, *answers])


def test_where_and_stops_name_cells_as_tracebacks_do(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ok(kernel, "def halve(v):\n    breakpoint()\n    return v / 2\n")  # In[1]
    ex, _ = session(kernel, "half = halve(8)\n", ["where", "c"])  # In[2]
    out = ex.stream_text()
    assert "> Cell In[1](3)halve()\n-> return v / 2\n" in out
    assert "  Cell In[2](1)<module>()\n-> half = halve(8)\n" in out
    assert "<cell-" not in out
    # the traceback of an error in the same function names the same cell
    failed, _ = session(kernel, "halve('x')\n", ["c"])
    assert any("Cell In[1], line 3" in line for line in failed.content["traceback"])


def test_break_at_a_cell_label_and_its_messages(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ok(
        kernel,
        "def count_up(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n",
    )
    answers = ["break Cell In[1]:5", "break", "c", "p total", "clear 1", "c"]
    ex, _ = session(kernel, "breakpoint()\ncounted = count_up(4)\n", answers)
    out = ex.stream_text()
    assert "Breakpoint 1 at Cell In[1]:5\n" in out
    assert "breakpoint   keep yes   at Cell In[1]:5\n" in out  # pdb's list of breakpoints
    assert "> Cell In[1](5)count_up()\n-> return total\n" in out and "\n6\n" in out
    assert "Deleted breakpoint 1 at Cell In[1]:5\n" in out
    assert ex.content["status"] == "ok" and result(ok(kernel, "counted")) == "6"


def test_next_steps_into_the_last_expression_and_shows_its_value(kernel: KernelHarness) -> None:
    code = "x = 1\nbreakpoint()\ny = x + 1\ny * 10\n"
    ex, _ = session(kernel, code, ["n", "p y", "n", "n"])
    out = ex.stream_text()
    # the last expression is a stop of its own, then its return with the value
    assert "-> y = x + 1\n" in out and "-> y * 10\n" in out and "\n2\n" in out
    assert "--Return--\n> Cell In[" in out and "<module>()->20\n" in out
    assert "<module>()->None" not in out  # no return stop between the body and its last line
    assert ex.content["status"] == "ok" and result(ex) == "20"
    # pdb's notes of the return value stay out of the user's namespace
    assert result(ok(kernel, "'__return__' in globals()")) == "False"


def test_breakpoint_on_the_last_line_binds(kernel: KernelHarness) -> None:
    code = "value = 5\nbreakpoint()\nother = 1\nvalue + other\n"
    ex, prompts = session(kernel, code, ["break 4", "c", "p other", "c"])
    out = ex.stream_text()
    assert (
        prompts == [PROMPT] * (len(TO_NEXT_LINE) + 4)
        and "(4)<module>()\n-> value + other\n" in out
        and "\n1\n" in out
    )
    assert result(ex) == "6"


def test_breakpoint_in_a_time_cell_stops_and_reaches_its_last_line(kernel: KernelHarness) -> None:
    code = "%%time\nz = 1\nbreakpoint()\nz += 1\nz\n"
    ex, _ = session(kernel, code, ["where", "n", "p z", "n", "c"])
    out = ex.stream_text()
    assert out.startswith("> Cell In[")  # the cell's own lines, under its label
    assert "(4)<module>()\n-> z += 1\n" in out and "(5)<module>()\n-> z\n" in out and "\n2\n" in out
    assert "fastkernel" not in out and "Wall time:" in out
    assert ex.content["status"] == "ok" and result(ex) == "2"


def test_breakpoint_in_a_timeit_cell_stops_in_the_cell(kernel: KernelHarness) -> None:
    code = "%%timeit -n2 -r1 runs = []\nruns.append(1)\nbreakpoint()\nlast_runs = len(runs)\n"
    # one stop per loop: timeit runs the cell's body twice
    ex, prompts = session(kernel, code, ["where", "p runs", "c", "p runs", "c"])
    out = ex.stream_text()
    assert prompts == [PROMPT] * (len(TO_NEXT_LINE) + 5)
    assert out.startswith("> Cell In[")
    assert "(4)inner()\n-> last_runs = len(runs)\n" in out
    assert "[1]\n" in out and "[1, 1]\n" in out  # setup ran once, then the body per loop
    assert "timeit.py" not in out and "fastkernel" not in out and "<timeit-src>" not in out
    assert "per loop (mean" in out and ex.content["status"] == "ok"


def test_cells_run_under_the_visual_debugger_keep_their_label(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    debugger = DapClient(kernel)
    debugger.start()
    path = debugger.ok("dumpCell", code="def halve(v):\n    breakpoint()\n    return v / 2\n")["sourcePath"]
    ok(kernel, "def halve(v):\n    breakpoint()\n    return v / 2\n")  # In[1], run as that file
    debugger.ok("disconnect", restart=False, terminateDebuggee=False)  # breakpoint() is pdb's again
    ex, _ = session(kernel, "halve(8)\n", ["where", "c"])
    out = ex.stream_text()
    assert "> Cell In[1](3)halve()\n-> return v / 2\n" in out and path not in out
    assert ex.stream_text("stderr") == ""  # no warning from debugpy about pdb's tracer
    assert result(ex) == "4.0"


def test_in_an_await_cell_the_session_ends_at_its_first_await(kernel: KernelHarness) -> None:
    code = "import asyncio\nbreakpoint()\nbefore = 1\nawait asyncio.sleep(0)\nafter = before + 1\nafter\n"
    ex, _ = session(kernel, code, ["n", "n"])  # to the await, then over it: the cell runs on
    out = ex.stream_text()
    assert "-> await asyncio.sleep(0)\n" in out and "-> after" not in out
    assert "fastkernel" not in out and "StopIteration" not in out
    assert ex.content["status"] == "ok" and result(ex) == "2"
    assert result(ok(kernel, "import sys; sys.gettrace() is None")) == "True"


def test_debug_post_mortem_names_the_cells(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ok(kernel, "def divide(v):\n    return 10 / v\n")  # In[1]
    assert kernel.execute("divide(0)\n").content["ename"] == "ZeroDivisionError"  # In[2]
    ex, _ = debug_session(kernel, "%debug", ["where", "q"])
    out = ex.stream_text()
    assert "  Cell In[2](1)<module>()\n-> divide(0)\n> Cell In[1](2)divide()\n-> return 10 / v\n" in out
    assert "<cell-" not in out
