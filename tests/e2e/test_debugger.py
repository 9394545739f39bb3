"""The visual debugger through a real kernel: the DAP sequence JupyterLab sends, and what the
kernel answers itself (debugInfo, dumpCell, inspectVariables, richInspectVariables)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastkernel.interpreter.debugcells import murmur2
from fastkernel.kernelspec import kernel_json
from tests.e2e.dap import DapClient
from tests.harness import KernelHarness, ok, result, stream_text

pytestmark = pytest.mark.timeout(180)

CELL = "def double(x):\n    y = x * 2\n    return y\n\na = 10\nb = double(a)\nprint('b is', b)\n"


@pytest.fixture
def dap(fresh_kernel: KernelHarness) -> Iterator[DapClient]:
    """A started debugger (initialize, attach, configurationDone) on a kernel of its own."""
    client = DapClient(fresh_kernel)
    client.start()
    yield client


def test_jupyterlab_sequence_stops_steps_and_shows_values(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    dap = DapClient(kernel)
    info = dap.ok("debugInfo")
    assert info["isStarted"] is False and info["hashMethod"] == "Murmur2"
    assert info["breakpoints"] == [] and info["stoppedThreads"] == []
    capabilities = dap.ok(
        "initialize", clientID="jupyterlab", adapterID="python", pathFormat="path", linesStartAt1=True
    )
    assert capabilities["supportsConfigurationDoneRequest"] is True
    dap.ok("attach")
    info = dap.ok("debugInfo")
    assert info["isStarted"] is True
    # JupyterLab names the cell's file itself from these, and finds it in stackTrace
    path = dap.ok("dumpCell", code=CELL)["sourcePath"]
    assert path == f"{info['tmpFilePrefix']}{murmur2(CELL, info['hashSeed'])}{info['tmpFileSuffix']}"
    assert Path(path).read_text() == CELL
    breakpoints = dap.ok(
        "setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}], sourceModified=False
    )
    assert [(b["line"], b["verified"]) for b in breakpoints["breakpoints"]] == [(2, True)]
    dap.ok("configurationDone")
    assert dap.ok("debugInfo")["breakpoints"] == [{"source": path, "breakpoints": [{"line": 2}]}]

    msg_id = kernel.kc.execute(CELL)
    stop = dap.event("stopped")
    assert stop["reason"] == "breakpoint"
    thread = stop["threadId"]
    assert dap.ok("debugInfo")["stoppedThreads"] == [thread]
    frames = dap.ok("stackTrace", threadId=thread)["stackFrames"]
    # the user's frames only: the function, then the cell that called it; no kernel frame
    assert [(f["name"], f["line"], f["source"]["path"]) for f in frames] == [
        ("double", 2, path),
        ("<module>", 6, path),
    ]
    frame = frames[0]["id"]
    assert dap.locals(frame) == {"x": "10"}
    globals_ref = next(s for s in dap.ok("scopes", frameId=frame)["scopes"] if s["name"] == "Globals")
    names = {
        v["name"]
        for v in dap.ok("variables", variablesReference=globals_ref["variablesReference"])["variables"]
    }
    assert "a" in names and "get_ipython" not in names and "__builtins__" not in names
    rich = dap.ok("richInspectVariables", variableName="x", frameId=frame)
    assert rich["data"]["text/plain"] == "10"
    for context in ("repl", "hover", "watch"):  # the debug console, a hover, a watch expression
        assert dap.ok("evaluate", expression="x * 3", frameId=frame, context=context)["result"] == "30"

    dap.ok("next", threadId=thread)
    thread, frames = dap.stopped()
    assert (frames[0]["name"], frames[0]["line"]) == ("double", 3)
    assert dap.locals(frames[0]["id"]) == {"x": "10", "y": "20"}
    dap.ok("continue", threadId=thread)
    reply = kernel.get_reply(msg_id)
    assert reply["content"]["status"] == "ok"
    assert stream_text(kernel.collect_iopub(msg_id)) == "b is 20\n"
    assert dap.ok("debugInfo")["stoppedThreads"] == []
    dap.ok("disconnect", restart=False, terminateDebuggee=True)
    assert dap.ok("debugInfo")["isStarted"] is False
    assert result(ok(kernel, "b + 1")) == "21"  # the kernel lives on, the cells' state too


def test_cell_output_reaches_its_cell_while_stopped_and_after(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "print('before')\nvalue = 5\nprint('after', value)\n"
    dap.breakpoints(code, 2)
    msg_id = kernel.kc.execute(code)
    thread, _ = dap.stopped()
    before = kernel.wait_for_iopub(lambda m: m["msg_type"] == "stream")
    assert before["parent_header"]["msg_id"] == msg_id and before["content"]["text"] == "before\n"
    dap.ok("continue", threadId=thread)
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    texts = [m["content"]["text"] for m in kernel.collect_iopub(msg_id) if m["msg_type"] == "stream"]
    assert "".join(texts) == "before\nafter 5\n"


def test_kernel_info_and_kernelspec_say_debugger(fresh_kernel: KernelHarness) -> None:
    reply = fresh_kernel.request("kernel_info_request", {}, channel="control").content
    assert "debugger" in reply["supported_features"] and reply["debugger"] is True
    assert kernel_json()["metadata"]["debugger"] is True
    shipped = json.loads((Path(__file__).parents[2] / "kernelspec" / "kernel.json").read_text())
    assert shipped["metadata"]["debugger"] is True


def test_debugpy_is_not_loaded_until_the_first_debug_request(fresh_kernel: KernelHarness) -> None:
    check = "import sys; ('debugpy' in sys.modules, 'fastkernel.debugger' in sys.modules, sys.gettrace())"
    fresh_kernel.request("kernel_info_request", {})  # it says debugger: true, without importing any of it
    assert result(ok(fresh_kernel, check)) == "(False, False, None)"
    # nor the link to debugpy's adapter and its socket modules (the kernel's threads import a mark)
    assert result(ok(fresh_kernel, "'fastkernel.transport.daplink' in sys.modules")) == "False"
    DapClient(fresh_kernel).ok("debugInfo")  # answered by the kernel alone
    assert result(ok(fresh_kernel, check)) == "(False, True, None)"


def test_inspect_variables_works_before_the_debugger_starts(fresh_kernel: KernelHarness) -> None:
    ok(fresh_kernel, "import pandas\nframe = {'a': [1, 2]}\nnumber = 42\nmessage = 'hi'")
    dap = DapClient(fresh_kernel)
    variables = {v["name"]: v for v in dap.ok("inspectVariables")["variables"]}
    assert variables["number"]["value"] == "42" and variables["number"]["type"] == "int"
    assert variables["message"]["value"] == "'hi'"
    assert not {"In", "Out", "get_ipython", "exit", "__builtins__", "_i1"} & set(variables)
    children = dap.ok("variables", variablesReference=variables["frame"]["variablesReference"])["variables"]
    assert [(c["name"], c["value"]) for c in children] == [("'a'", "[1, 2]")]
    rich = dap.ok("richInspectVariables", variableName="number")
    assert rich["data"] == {"text/plain": "42"}
    failed = dap.request("richInspectVariables", variableName="nowhere")
    assert failed["success"] is False and "nowhere is not defined" in failed["message"]


def test_requests_before_initialize_fail_clearly(fresh_kernel: KernelHarness) -> None:
    dap = DapClient(fresh_kernel)
    answer = dap.request("setBreakpoints", source={"path": "/tmp/x.py"}, breakpoints=[{"line": 1}])
    assert answer["success"] is False and "not started" in answer["message"]
    bad = fresh_kernel.send("debug_request", ["not", "a", "request"], channel="control")
    content = fresh_kernel.get_reply(bad, "control")["content"]
    assert content["success"] is False and "DAP request" in content["message"]
    odd = dap.request("modules", startModule="first")  # arguments of the wrong type
    assert odd["success"] is False and odd["message"].startswith("modules: ValueError")
    assert dap.ok("debugInfo")["isStarted"] is False  # and the kernel serves on


def test_missing_debugpy_gives_a_clear_error_reply(fresh_kernel: KernelHarness, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['debugpy'] = None\n")
    with KernelHarness.start(env={"PYTHONPATH": str(tmp_path)}) as kernel:
        info = kernel.request("kernel_info_request", {}).content
        assert "debugger" not in info["supported_features"] and info["debugger"] is False
        answer = DapClient(kernel).request("initialize", clientID="jupyterlab", adapterID="python")
        assert answer["success"] is False
        assert answer["message"] == "the debugger needs debugpy, which is not installed: pip install debugpy"
        assert result(ok(kernel, "1 + 1")) == "2"


def test_rich_inspect_and_copy_to_globals_in_a_stopped_frame(dap: DapClient) -> None:
    kernel = dap.kernel
    code = "def build():\n    local_list = [1, 2, 3]\n    return len(local_list)\n\nbuild()\n"
    dap.breakpoints(code, 3)
    msg_id = kernel.kc.execute(code)
    thread, frames = dap.stopped()
    frame = frames[0]["id"]
    rich = dap.ok("richInspectVariables", variableName="local_list", frameId=frame)
    assert rich["data"]["text/plain"] == "[1, 2, 3]"
    dap.ok("copyToGlobals", srcVariableName="local_list", dstVariableName="copied", srcFrameId=frame)
    dap.ok("continue", threadId=thread)
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    assert result(ok(kernel, "copied")) == "[1, 2, 3]"


def test_thread_events_reach_iopub(dap: DapClient) -> None:
    ok(
        dap.kernel,
        "import threading\nworker = threading.Thread(target=lambda: None)\nworker.start(); worker.join()",
    )
    started = dap.event("thread")
    assert started["reason"] == "started" and isinstance(started["threadId"], int)
    events = [m for m in dap.kernel.stray if m["msg_type"] == "debug_event"]
    assert events and all(m["parent_header"]["msg_type"] == "debug_request" for m in events)
