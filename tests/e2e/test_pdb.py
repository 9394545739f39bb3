"""pdb over stdin (input_request) through jupyter_client: breakpoint(), pdb.set_trace(),
%debug, %pdb on|off, and the end of a pdb session (quit, step past the cell, interrupt)."""

from __future__ import annotations

import queue

import pytest

from tests.harness import Execution, KernelHarness, ok, result, stream_text
from tests.kernels import TIMEOUT
from tests.spec import validate

pytestmark = pytest.mark.timeout(90)
PROMPT = "(Pdb) "


def debug_session(kernel: KernelHarness, code: str, answers: list[str]) -> tuple[Execution, list[str]]:
    """Run ``code`` and answer each pdb prompt in turn; (the cell's execution, the prompts seen).

    Fails if the cell asks for more input than ``answers`` holds.
    """
    msg_id = kernel.kc.execute(code, allow_stdin=True, stop_on_error=False)
    prompts = []
    for answer in answers:
        request = kernel.kc.get_stdin_msg(timeout=TIMEOUT)
        validate(request, "input_request")
        prompts.append(request["content"]["prompt"])
        kernel.kc.input(answer)
    reply = kernel.get_reply(msg_id)
    with pytest.raises(queue.Empty):  # no prompt left unanswered
        kernel.kc.get_stdin_msg(timeout=0.2)
    return Execution(reply, kernel.collect_iopub(msg_id)), prompts


def test_builtin_breakpoint_opens_pdb_over_stdin(kernel: KernelHarness) -> None:
    code = "x = 41\nbreakpoint()\ny = x + 1\nprint('y is', y)\n"
    ex, prompts = debug_session(kernel, code, ["p x", "n", "p y", "c"])
    assert prompts == [PROMPT] * 4
    assert ex.content["status"] == "ok"
    out = ex.stream_text()
    assert "-> y = x + 1" in out and "41\n" in out and "42\n" in out and out.endswith("y is 42\n")


def test_pdb_set_trace_in_a_function_and_quit(kernel: KernelHarness) -> None:
    code = "import pdb\ndef work():\n    local = 'inside'\n    pdb.set_trace()\n    return local\nwork()\n"
    ex, _ = debug_session(kernel, code, ["p local", "where", "q"])
    out = ex.stream_text()
    assert "'inside'" in out and "work()" in out
    assert "fastkernel" not in out  # `where` lists the user's frames, not the kernel's
    assert (ex.content["status"], ex.content["ename"]) == ("error", "BdbQuit")
    assert "bdb.py" not in "\n".join(ex.content["traceback"])  # it ends at the user's line
    assert result(ok(kernel, "'after quit'")) == "'after quit'"


def test_stepping_past_the_cell_end_leaves_no_tracer_behind(kernel: KernelHarness) -> None:
    code = "first = 1\nbreakpoint()\nsecond = first + 1\n"
    ex, _ = debug_session(kernel, code, ["n", "n"])  # over the last line, then past the cell's end
    out = ex.stream_text()
    assert ex.content["status"] == "ok" and "fastkernel" not in out and "bdb.py" not in out
    assert ex.stream_text("stderr") == ""
    # the next cells run untraced: no prompt, no BdbQuit
    assert result(ok(kernel, "import sys; sys.gettrace() is None")) == "True"
    assert result(ok(kernel, "second")) == "2"


def test_debug_magic_is_a_post_mortem_of_the_last_error(kernel: KernelHarness) -> None:
    failed = kernel.execute("def divide(v):\n    return 10 / v\ndivide(0)\n")
    assert failed.content["ename"] == "ZeroDivisionError"
    ex, _ = debug_session(kernel, "%debug", ["p v", "up", "p v * 2", "q"])
    out = ex.stream_text()
    assert "-> return 10 / v" in out and "0\n" in out and "-> divide(0)" in out
    assert ex.content["status"] == "ok"


def test_debug_magic_runs_a_statement_under_pdb(kernel: KernelHarness) -> None:
    ex, _ = debug_session(kernel, "%debug total = 6 * 7", ["n", "p total", "c"])
    assert ex.content["status"] == "ok" and "42\n" in ex.stream_text()
    assert result(ok(kernel, "total")) == "42"


def test_pdb_on_enters_post_mortem_after_an_error(kernel: KernelHarness) -> None:
    assert ok(kernel, "%pdb on").stream_text() == "Automatic pdb calling has been turned ON\n"
    try:
        ex, _ = debug_session(kernel, "def look(key):\n    return {}[key]\nlook('k')\n", ["p key", "c"])
        assert (ex.content["status"], ex.content["ename"]) == ("error", "KeyError")
        # the traceback is shown first, once, then pdb at the failing line
        errors = ex.of_type("error")
        assert len(errors) == 1 and errors[0]["content"]["ename"] == "KeyError"
        assert ex.types.index("error") < next(i for i, m in enumerate(ex.iopub) if m["msg_type"] == "stream")
        assert "-> return {}[key]" in ex.stream_text() and "'k'" in ex.stream_text()
    finally:
        assert ok(kernel, "%pdb off").stream_text() == "Automatic pdb calling has been turned OFF\n"
    failed = kernel.execute("{}['again']", allow_stdin=True)  # no prompt now
    assert failed.content["ename"] == "KeyError"


def test_pdb_magic_rejects_other_words(kernel: KernelHarness) -> None:
    ex = kernel.execute("%pdb maybe")
    assert ex.content["status"] == "error" and "on or off" in ex.content["evalue"]


def test_debug_with_no_error_says_so(fresh_kernel: KernelHarness) -> None:
    assert ok(fresh_kernel, "%debug").stream_text() == "No traceback has been produced, nothing to debug.\n"


def test_interrupt_at_the_pdb_prompt_ends_the_cell_with_its_reply(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = kernel.kc.execute("breakpoint()\nprint('not reached')\n", allow_stdin=True)
    assert kernel.kc.get_stdin_msg(timeout=TIMEOUT)["content"]["prompt"] == PROMPT
    kernel.request("interrupt_request", {}, channel="control")
    reply = kernel.get_reply(msg_id)["content"]
    assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")
    out = stream_text(kernel.collect_iopub(msg_id))
    assert "not reached" not in out.splitlines()  # pdb may show the line, which never ran
    assert result(ok(kernel, "import sys; sys.gettrace() is None")) == "True"


def test_breakpoint_without_stdin_is_a_clear_error(kernel: KernelHarness) -> None:
    ex = kernel.execute("breakpoint()\nprint('not reached')\n", allow_stdin=False, stop_on_error=False)
    assert (ex.content["status"], ex.content["ename"]) == ("error", "StdinNotImplementedError")
    assert "not reached" not in ex.stream_text().splitlines()  # pdb showed the line, never ran it
    assert result(ok(kernel, "import sys; sys.gettrace() is None")) == "True"
