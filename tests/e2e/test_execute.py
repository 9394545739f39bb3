"""execute_request end to end: broadcasts, streams, results, errors, counters, ordering."""

from __future__ import annotations

import re
from pathlib import Path

from tests.harness import Execution, KernelHarness


def _parented(msg_id: str, msg_type: str):
    return lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == msg_type


def _assert_framed(ex: Execution) -> None:
    """busy first, execute_input next (when present), idle last, nothing else is a status."""
    types = ex.types
    assert types[0] == "status" and ex.iopub[0]["content"]["execution_state"] == "busy", types
    assert types[-1] == "status" and ex.iopub[-1]["content"]["execution_state"] == "idle", types
    assert "status" not in types[1:-1], types


def test_execute_input_broadcasts_code_and_count(kernel: KernelHarness) -> None:
    code = "ei_value = 40\nei_value + 2"
    ex = kernel.execute(code)
    _assert_framed(ex)
    assert ex.types[1] == "execute_input", ex.types
    count = ex.content["execution_count"]
    (ei,) = ex.of_type("execute_input")
    assert ei["content"] == {"code": code, "execution_count": count}
    assert ex.types == ["status", "execute_input", "execute_result", "status"]


def test_stdout_and_stderr_streams(kernel: KernelHarness) -> None:
    ex = kernel.execute("import sys\nprint('to out')\nprint('to err', file=sys.stderr)")
    assert ex.content["status"] == "ok"
    _assert_framed(ex)
    streams = [(m["content"]["name"], m["content"]["text"]) for m in ex.of_type("stream")]
    assert streams == [("stdout", "to out\n"), ("stderr", "to err\n")]
    assert ex.of_type("execute_result") == []


def test_stream_order_across_stdout_and_stderr_is_kept(kernel: KernelHarness) -> None:
    ex = kernel.execute("import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')")
    streams = [(m["content"]["name"], m["content"]["text"]) for m in ex.of_type("stream")]
    assert streams == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")]


def test_stdout_arrives_while_the_cell_runs(kernel: KernelHarness, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    code = (
        "import os, time\n"
        "print('first')\n"
        "_deadline = time.monotonic() + 15\n"
        f"while not os.path.exists({str(flag)!r}) and time.monotonic() < _deadline:\n"
        "    time.sleep(0.01)\n"
        f"print('second' if os.path.exists({str(flag)!r}) else 'timed out')\n"
    )
    msg_id = kernel.kc.execute(code)
    first = kernel.wait_for_iopub(_parented(msg_id, "stream"), timeout=10)
    assert first["content"] == {"name": "stdout", "text": "first\n"}
    flag.touch()  # only now may the cell finish
    reply = kernel.get_reply(msg_id)
    ex = Execution(reply, kernel.collect_iopub(msg_id))
    assert ex.content["status"] == "ok"
    assert ex.stream_text() == "first\nsecond\n"
    _assert_framed(ex)


def test_last_expression_gives_execute_result(kernel: KernelHarness) -> None:
    ex = kernel.execute("er_x = 3\ner_x * 2")
    count = ex.content["execution_count"]
    (result,) = ex.of_type("execute_result")
    assert result["content"]["data"]["text/plain"] == "6"
    assert result["content"]["execution_count"] == count
    assert result["content"]["metadata"] == {}


def test_none_result_is_not_displayed(kernel: KernelHarness) -> None:
    ex = kernel.execute("None")
    assert ex.of_type("execute_result") == []


def test_trailing_semicolon_suppresses_result(kernel: KernelHarness) -> None:
    for code in ("1 + 1;", "1 + 1 ;  # a comment", "x_semi = 5\nx_semi;"):
        ex = kernel.execute(code)
        assert ex.content["status"] == "ok", code
        assert ex.of_type("execute_result") == [], code
    # the statement still ran
    assert kernel.execute("x_semi").of_type("execute_result")[0]["content"]["data"]["text/plain"] == "5"


def test_semicolon_inside_a_string_does_not_suppress(kernel: KernelHarness) -> None:
    ex = kernel.execute("'a;'")
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "'a;'"


def test_exception_gives_error_message_and_error_reply(kernel: KernelHarness) -> None:
    ex = kernel.execute("print('before')\n1 / 0")
    _assert_framed(ex)
    assert ex.types == ["status", "execute_input", "stream", "error", "status"]
    reply = ex.content
    assert reply["status"] == "error"
    assert reply["ename"] == "ZeroDivisionError"
    assert reply["evalue"] == "division by zero"
    count = reply["execution_count"]
    assert isinstance(count, int)
    (error,) = ex.of_type("error")
    assert error["content"]["ename"] == "ZeroDivisionError"
    assert error["content"]["evalue"] == "division by zero"
    assert error["content"]["traceback"] == reply["traceback"]
    text = "\n".join(reply["traceback"])
    assert f"Cell In[{count}]" in text, text
    assert "ZeroDivisionError" in text
    assert "fastkernel" not in text, "kernel frames leak into the user's traceback"


def test_custom_exception_class_gives_bare_name(kernel: KernelHarness) -> None:
    ex = kernel.execute("class MyCellError(Exception):\n    pass\n\nraise MyCellError('boom')")
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "MyCellError"
    assert ex.content["evalue"] == "boom"
    (error,) = ex.of_type("error")
    assert error["content"]["ename"] == "MyCellError"
    assert f"Cell In[{ex.content['execution_count']}]" in "\n".join(error["content"]["traceback"])


def test_syntax_error_is_reported(kernel: KernelHarness) -> None:
    ex = kernel.execute("x = )")
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "SyntaxError"
    assert len(ex.of_type("error")) == 1
    # the kernel is fine afterwards
    assert kernel.execute("1").content["status"] == "ok"


def test_execution_count_counts_only_stored_non_silent_cells(kernel: KernelHarness) -> None:
    first = kernel.execute("'counted'")
    n = first.content["execution_count"]
    assert first.of_type("execute_result")[0]["content"]["execution_count"] == n

    silent = kernel.execute("print('quiet'); 'silent'", silent=True)
    assert silent.content["status"] == "ok"
    assert silent.content["execution_count"] == n
    assert silent.types[0] == "status" and silent.types[-1] == "status"
    assert "execute_input" not in silent.types
    assert "execute_result" not in silent.types

    unstored = kernel.execute("'not stored'", store_history=False)
    assert unstored.content["status"] == "ok"
    assert unstored.content["execution_count"] == n

    failed = kernel.execute("raise ValueError('counted too')")
    assert failed.content["execution_count"] == n + 1

    last = kernel.execute("'counted again'")
    assert last.content["execution_count"] == n + 2
    assert last.of_type("execute_input")[0]["content"]["execution_count"] == n + 2
    assert last.of_type("execute_result")[0]["content"]["execution_count"] == n + 2


def test_silent_error_still_replies(kernel: KernelHarness) -> None:
    ex = kernel.execute("1 / 0", silent=True)
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "ZeroDivisionError"
    assert "execute_input" not in ex.types


def test_user_expressions_ok_and_error_per_key(kernel: KernelHarness) -> None:
    ex = kernel.execute(
        "ue_x = 21",
        user_expressions={"double": "ue_x * 2", "zero": "1 / 0", "missing": "ue_no_such_name"},
    )
    assert ex.content["status"] == "ok"
    results = ex.content["user_expressions"]
    assert set(results) == {"double", "zero", "missing"}
    assert results["double"]["status"] == "ok"
    assert results["double"]["data"]["text/plain"] == "42"
    assert "metadata" in results["double"]
    assert results["zero"]["status"] == "error"
    assert results["zero"]["ename"] == "ZeroDivisionError"
    assert isinstance(results["zero"]["traceback"], list)
    assert results["missing"]["status"] == "error"
    assert results["missing"]["ename"] == "NameError"
    # user expressions publish nothing on iopub
    assert ex.types == ["status", "execute_input", "status"]


def test_user_expressions_do_not_bump_the_count(kernel: KernelHarness) -> None:
    n = kernel.execute("pass").content["execution_count"]
    kernel.execute("pass", user_expressions={"a": "1 + 1"})
    assert kernel.execute("pass").content["execution_count"] == n + 2


def test_all_output_comes_before_idle(kernel: KernelHarness) -> None:
    code = (
        "import sys, threading\n"
        "for i in range(300):\n"
        "    print('out', i)\n"
        "    print('err', i, file=sys.stderr)\n"
        "t = threading.Thread(target=lambda: print('from thread'))\n"
        "t.start(); t.join()\n"
        "'done'"
    )
    ex = kernel.execute(code)
    assert ex.content["status"] == "ok"
    _assert_framed(ex)
    out = ex.stream_text("stdout")
    err = ex.stream_text("stderr")
    assert out == "".join(f"out {i}\n" for i in range(300)) + "from thread\n"
    assert err == "".join(f"err {i}\n" for i in range(300))
    assert ex.types[-2] == "execute_result"
    # nothing for this request may come after its idle
    msg_id = ex.reply["parent_header"]["msg_id"]
    kernel.execute("pass")
    assert [m for m in kernel.stray if m["parent_header"].get("msg_id") == msg_id] == []


def test_print_without_newline_is_flushed_by_cell_end(kernel: KernelHarness) -> None:
    ex = kernel.execute("print('no newline', end='')")
    assert ex.stream_text() == "no newline"


def test_requests_are_answered_in_order(kernel: KernelHarness) -> None:
    ids = [kernel.kc.execute(f"{i} * 10") for i in range(5)]
    for i, msg_id in enumerate(ids):
        reply = kernel.get_reply(msg_id)
        assert reply["content"]["status"] == "ok"
        ex = Execution(reply, kernel.collect_iopub(msg_id))
        assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == str(i * 10)


def test_a_result_whose_repr_raises_fails_the_cell_as_in_python(kernel: KernelHarness) -> None:
    kernel.execute("class BrokenRepr:\n    def __repr__(self):\n        1 / 0")
    ex = kernel.execute("BrokenRepr()")
    assert ex.content["status"] == "error" and ex.content["ename"] == "ZeroDivisionError"
    assert ex.types == ["status", "execute_input", "error", "status"]  # no execute_result
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(ex.of_type("error")[0]["content"]["traceback"]))
    assert "__repr__" in traceback and "1 / 0" in traceback and "fastkernel" not in traceback
    # display() of it still shows what it can, with a line on stderr, as IPython's display does
    shown = kernel.execute("from IPython.display import display\ndisplay(BrokenRepr())")
    assert shown.content["status"] == "ok"
    assert (
        shown.of_type("display_data")[0]["content"]["data"]["text/plain"]
        == "<BrokenRepr object (repr failed)>"
    )
    assert "BrokenRepr.__repr__ raised ZeroDivisionError" in shown.stream_text("stderr")


def test_a_cell_sent_after_a_failed_cells_reply_runs(kernel: KernelHarness) -> None:
    """stop_on_error aborts what was queued when the cell failed, not what the client sends
    once it has the failed cell's reply (it was drained after the reply went out)."""
    for _ in range(20):
        failed = kernel.execute("1 / 0")
        assert failed.content["ename"] == "ZeroDivisionError"
        assert kernel.execute("after_failure = 1").content["status"] == "ok"
