"""Where the visual debugger stops (cells, across cells, modules, exceptions, breakpoint()), and
what keeps working while a cell is stopped: control requests, interrupts, restarts, disconnect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.dap import DapClient
from tests.harness import KernelHarness, ok, result, stream_text

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def dap(fresh_kernel: KernelHarness) -> Iterator[DapClient]:
    """A started debugger (initialize, attach, configurationDone) on a kernel of its own."""
    client = DapClient(fresh_kernel)
    client.start()
    yield client


def run_to_stop(dap: DapClient, code: str) -> tuple[str, int, list[dict]]:
    """Execute ``code`` and wait until it stops: (execute msg_id, thread, frames)."""
    msg_id = dap.kernel.kc.execute(code)
    thread, frames = dap.stopped()
    return msg_id, thread, frames


def finish(dap: DapClient, msg_id: str, thread: int) -> dict:
    dap.ok("continue", threadId=thread)
    return dap.kernel.get_reply(msg_id)["content"]


def test_breakpoint_binds_after_leading_blank_lines(dap: DapClient) -> None:
    code = "\n\n\nfirst = 1\nsecond = first + 1\n"
    path = dap.breakpoints(code, 5)
    msg_id, thread, frames = run_to_stop(dap, code)
    assert [(f["line"], f["source"]["path"]) for f in frames] == [(5, path)]
    assert finish(dap, msg_id, thread)["status"] == "ok"


def test_breakpoint_in_a_function_defined_in_another_cell(dap: DapClient) -> None:
    definition = "def tripled(n):\n    out = n * 3\n    return out\n"
    path = dap.breakpoints(definition, 2)
    ok(dap.kernel, definition)
    caller = "total = tripled(7)\n"
    msg_id, thread, frames = run_to_stop(dap, caller)
    assert [(f["name"], f["line"]) for f in frames] == [("tripled", 2), ("<module>", 1)]
    assert frames[0]["source"]["path"] == path and frames[1]["source"]["path"] != path
    assert dap.locals(frames[0]["id"]) == {"n": "7"}
    assert finish(dap, msg_id, thread)["status"] == "ok"
    assert result(ok(dap.kernel, "total")) == "21"


def test_breakpoint_in_an_imported_module(dap: DapClient, tmp_path: Path) -> None:
    module = tmp_path / "helpers_for_debug.py"
    module.write_text("def square(v):\n    squared = v * v\n    return squared\n")
    body = dap.ok("setBreakpoints", source={"path": str(module)}, breakpoints=[{"line": 2}])
    assert body["breakpoints"][0]["verified"] is True
    code = f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
    code += "import helpers_for_debug\nhelpers_for_debug.square(9)\n"
    msg_id, thread, frames = run_to_stop(dap, code)
    assert (frames[0]["name"], frames[0]["line"], frames[0]["source"]["path"]) == ("square", 2, str(module))
    assert dap.locals(frames[0]["id"]) == {"v": "9"}
    assert finish(dap, msg_id, thread)["status"] == "ok"


def test_stops_on_raised_exception(dap: DapClient) -> None:
    dap.ok("setExceptionBreakpoints", filters=["raised"])
    code = "try:\n    {}['missing']\nexcept KeyError:\n    caught = True\n"
    msg_id, thread, frames = run_to_stop(dap, code)
    assert frames[0]["line"] == 2
    info = dap.ok("exceptionInfo", threadId=thread)
    assert info["exceptionId"].endswith("KeyError")
    assert finish(dap, msg_id, thread)["status"] == "ok"


def test_stops_on_uncaught_exception_of_a_cell(dap: DapClient) -> None:
    dap.ok("setExceptionBreakpoints", filters=["uncaught"])
    code = "def explode():\n    raise ValueError('boom')\n\nexplode()\n"
    msg_id, thread, frames = run_to_stop(dap, code)
    assert [(f["name"], f["line"]) for f in frames][:1] == [("explode", 2)]
    assert "ValueError" in dap.ok("exceptionInfo", threadId=thread)["exceptionId"]
    reply = finish(dap, msg_id, thread)
    assert (reply["status"], reply["ename"], reply["evalue"]) == ("error", "ValueError", "boom")


def test_cell_code_keeps_its_habits_with_the_debugger_on(dap: DapClient) -> None:
    kernel = dap.kernel
    ok(
        kernel,
        "import inspect, linecache, pickle\ndef shown():\n    return 'here'\n\nclass Kept:\n    pass\n",
    )
    assert result(ok(kernel, "inspect.getsource(shown)")) == repr("def shown():\n    return 'here'\n")
    assert result(ok(kernel, "linecache.getline(shown.__code__.co_filename, 3)")) == repr(
        "    return 'here'\n"
    )
    assert result(ok(kernel, "type(pickle.loads(pickle.dumps(Kept()))).__name__")) == "'Kept'"
    failing = kernel.execute("def inner():\n    return 1 / 0\ninner()\n")
    traceback = "\n".join(failing.content["traceback"])
    assert failing.content["ename"] == "ZeroDivisionError"
    assert "Cell In[" in traceback and "return 1 / 0" in traceback
    assert "fastkernel" not in traceback and "debugpy" not in traceback


def test_control_answers_while_a_cell_is_stopped(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "waiting = 1\nwaiting += 1\n"
    dap.breakpoints(code, 2)
    msg_id, thread, _ = run_to_stop(dap, code)
    info = kernel.request("kernel_info_request", {}, channel="control").content
    assert info["status"] == "ok" and info["implementation"] == "fastkernel"
    assert kernel.request("usage_request", {}, channel="control").content["pid"] == kernel.process.pid
    assert dap.ok("debugInfo")["stoppedThreads"] == [thread]
    threads = dap.ok("threads")["threads"]
    assert thread in [t["id"] for t in threads]
    assert not [t for t in threads if t["name"].startswith("fastkernel-") and "subshell" not in t["name"]]
    assert finish(dap, msg_id, thread)["status"] == "ok"


@pytest.mark.parametrize("how", ["interrupt_request", "signal"])
def test_interrupt_while_stopped_ends_the_cell_with_its_reply(dap: DapClient, how: str) -> None:
    kernel = dap.kernel
    code = "stuck = 1\nstuck += 1\n"
    dap.breakpoints(code, 2)
    msg_id, _, _ = run_to_stop(dap, code)
    if how == "signal":  # as JupyterLab's interrupt reaches a kernel with interrupt_mode: signal
        kernel.process.interrupt()
    else:
        assert kernel.request("interrupt_request", {}, channel="control").content["status"] == "ok"
    reply = kernel.get_reply(msg_id)["content"]
    assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")
    assert result(ok(kernel, "stuck")) == "1"  # the kernel runs cells again
    assert dap.ok("debugInfo")["stoppedThreads"] == []
    assert dap.event("continued")["allThreadsContinued"] is True  # the frontend leaves its stopped view
    msg_id, thread, _ = run_to_stop(dap, code)  # and the breakpoint still stops the cell
    assert finish(dap, msg_id, thread)["status"] == "ok"


def test_disconnect_resumes_the_stopped_cell(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "resumed = 'no'\nresumed = 'yes'\nprint(resumed)\n"
    dap.breakpoints(code, 2)
    msg_id, _, _ = run_to_stop(dap, code)
    dap.ok("disconnect", restart=False, terminateDebuggee=True)
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    assert stream_text(kernel.collect_iopub(msg_id)) == "yes\n"
    # the next cells run untraced, as before the debugger started, and a new session stops again
    assert result(ok(kernel, "import sys; resumed, sys.gettrace()")) == "('yes', None)"
    dap.start()
    dap.breakpoints(code, 2)
    msg_id, thread, _ = run_to_stop(dap, code)
    assert finish(dap, msg_id, thread)["status"] == "ok"


def test_restart_from_the_stopped_state(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "before_restart = 1\nbefore_restart += 1\n"
    dap.breakpoints(code, 2)
    run_to_stop(dap, code)
    kernel.process.restart()
    kernel.kc.wait_for_ready(timeout=30)
    assert result(ok(kernel, "'before_restart' in globals()")) == "False"
    assert DapClient(kernel).ok("debugInfo")["isStarted"] is False


def test_builtin_breakpoint_stops_in_the_visual_debugger(dap: DapClient) -> None:
    code = "marker = 'here'\nbreakpoint()\nafter = marker * 2\n"
    msg_id, thread, frames = run_to_stop(dap, code)
    assert frames[0]["name"] == "<module>" and frames[0]["line"] in (2, 3)
    assert dap.locals(frames[0]["id"])["marker"] == "'here'"
    assert finish(dap, msg_id, thread)["status"] == "ok"


def test_stepping_stays_in_user_code(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "def helper():\n    return 5\n\nvalue = helper()\nlast = value + 1\n"
    dap.breakpoints(code, 4)
    msg_id, thread, frames = run_to_stop(dap, code)
    dap.ok("stepIn", threadId=thread)
    thread, frames = dap.stopped()
    assert [(f["name"], f["line"]) for f in frames] == [("helper", 2), ("<module>", 4)]
    dap.ok("stepOut", threadId=thread)
    thread, frames = dap.stopped()
    assert frames[0]["name"] == "<module>" and frames[0]["line"] == 4
    dap.ok("next", threadId=thread)
    thread, frames = dap.stopped()
    assert (frames[0]["name"], frames[0]["line"]) == ("<module>", 5)
    dap.ok("next", threadId=thread)  # past the cell's end: the cell finishes, no kernel frame
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    assert result(ok(kernel, "last")) == "6"
    assert dap.ok("debugInfo")["stoppedThreads"] == []


def test_pause_source_modules_and_variable_paging(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "import time\nnumbers = list(range(50))\nfor _ in range(3000):\n    time.sleep(0.01)\n"
    path = str(dap.ok("dumpCell", code=code)["sourcePath"])
    msg_id = kernel.kc.execute(code)
    kernel.wait_for_iopub(
        lambda m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == msg_id
    )
    thread = next(t["id"] for t in dap.ok("threads")["threads"] if t["name"] == "MainThread")
    dap.ok("pause", threadId=thread)
    thread, frames = dap.stopped()
    assert frames[0]["source"]["path"] == path
    assert dap.ok("source", source={"path": path})["content"] == code
    modules = dap.ok("modules", startModule=0, moduleCount=5)
    assert len(modules["modules"]) == 5 and modules["totalModules"] > 5
    scopes = dap.ok("scopes", frameId=frames[0]["id"])["scopes"]
    numbers = next(
        v
        for v in dap.ok("variables", variablesReference=scopes[0]["variablesReference"])["variables"]
        if v["name"] == "numbers"
    )
    page = dap.ok("variables", variablesReference=numbers["variablesReference"], start=10, count=5)
    assert [v["value"] for v in page["variables"]] == ["10", "11", "12", "13", "14"]
    kernel.request("interrupt_request", {}, channel="control")
    assert kernel.get_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"
