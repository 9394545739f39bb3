"""ipywidgets 8 through a real kernel, the test acting as the frontend (JupyterLab's widget manager).

The message sequences are those ipykernel 7 sends for the same cells.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_comms import send_comm
from tests.harness import Execution, KernelHarness

pytest.importorskip("ipywidgets")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
Msg = dict[str, Any]


def ok(kernel: KernelHarness, code: str) -> Execution:
    run = kernel.execute(code)
    assert run.content["status"] == "ok", run.content
    return run


def shown(run: Execution) -> list[Msg]:
    """What a user would see: the output messages, without status and execute_input."""
    return [m for m in run.iopub if m["msg_type"] not in ("status", "execute_input")]


def model_id(msg: Msg) -> str:
    return str(msg["content"]["data"][WIDGET_VIEW]["model_id"])


def update(kernel: KernelHarness, comm_id: str, state: dict[str, Any]) -> tuple[Execution, str]:
    """Send the frontend's state update to a widget; return its iopub messages and its msg_id."""
    run = send_comm(
        kernel,
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}},
    )
    return run, run.iopub[0]["parent_header"]["msg_id"]


def test_import_registers_the_widget_comm_targets(kernel: KernelHarness) -> None:
    run = ok(kernel, "import ipywidgets, comm\nprint(sorted(comm.get_comm_manager().targets))")
    assert run.stream_text() == "['jupyter.widget', 'jupyter.widget.control']\n"


def test_displayed_widget_opens_comms_then_shows_a_view(kernel: KernelHarness) -> None:
    run = ok(
        kernel,
        "import ipywidgets as w\nfrom IPython.display import display\ns = w.IntSlider(value=1)\ndisplay(s)",
    )
    types = [m["msg_type"] for m in shown(run)]
    assert types == ["comm_open", "comm_open", "comm_open", "display_data"]  # layout, style, slider, view
    opened = shown(run)[2]["content"]
    assert opened["target_name"] == "jupyter.widget"
    assert (
        opened["data"]["state"]["_model_name"] == "IntSliderModel" and opened["data"]["state"]["value"] == 1
    )
    view = shown(run)[3]
    assert model_id(view) == opened["comm_id"]
    assert view["content"]["data"]["text/plain"] == "IntSlider(value=1)"
    assert ok(kernel, "s").of_type("execute_result")[0]["content"]["data"][WIDGET_VIEW][
        "model_id"
    ] == model_id(view)


def test_frontend_update_sets_value_and_runs_observers(kernel: KernelHarness) -> None:
    code = (
        "import ipywidgets as w\ns = w.IntSlider(value=1)\nseen = []\n"
        "def changed(change):\n    seen.append(change['new'])\n    print('changed to', change['new'])\n"
        "s.observe(changed, 'value')\ns"
    )
    comm_id = model_id(ok(kernel, code).of_type("execute_result")[0])
    run, msg_id = update(kernel, comm_id, {"value": 5})
    echo, printed = shown(run)
    assert echo["msg_type"] == "comm_msg"  # ipywidgets 8 echoes the accepted state first
    assert echo["content"]["data"] == {"method": "echo_update", "state": {"value": 5}, "buffer_paths": []}
    assert printed["content"] == {"name": "stdout", "text": "changed to 5\n"}
    assert all(m["parent_header"]["msg_id"] == msg_id for m in run.iopub)
    assert ok(kernel, "print(s.value, seen)").stream_text() == "5 [5]\n"


def output_msg_ids(msgs: list[Msg], comm_id: str) -> list[str]:
    """The values an Output widget's msg_id was set to, in order."""
    return [
        m["content"]["data"]["state"]["msg_id"]
        for m in msgs
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and "msg_id" in m["content"]["data"]["state"]
    ]


def test_interact_runs_the_function_into_its_output_widget(kernel: KernelHarness) -> None:
    code = (
        "from ipywidgets import interact\n"
        "def f(x):\n    print('x is', x)\n    return x * 2\n"
        "ui = interact(f, x=10)"
    )
    run = ok(kernel, code)
    cell_id = run.reply["parent_header"]["msg_id"]
    opened = {
        m["content"]["data"]["state"]["_model_name"]: m["content"]["comm_id"]
        for m in run.of_type("comm_open")
    }
    out_id, slider_id = opened["OutputModel"], opened["IntSliderModel"]
    assert output_msg_ids(run.iopub, out_id) == [cell_id, ""]
    types = [m["msg_type"] for m in shown(run) if m["msg_type"] != "comm_open"]
    # description, children, capture on, clear, print, result, capture off, the interact view
    assert types == [
        "comm_msg",
        "comm_msg",
        "comm_msg",
        "clear_output",
        "stream",
        "display_data",
        "comm_msg",
        "display_data",
    ]
    assert run.stream_text() == "x is 10\n"
    assert run.of_type("display_data")[0]["content"]["data"] == {"text/plain": "20"}
    assert model_id(run.of_type("display_data")[1]) == opened["VBoxModel"]

    moved, msg_id = update(kernel, slider_id, {"value": 3})  # the user drags the slider
    assert output_msg_ids(moved.iopub, out_id) == [msg_id, ""]  # captured under the comm message
    assert moved.stream_text() == "x is 3\n"
    assert moved.of_type("display_data")[0]["content"]["data"] == {"text/plain": "6"}
    assert all(m["parent_header"]["msg_id"] == msg_id for m in moved.iopub)


def test_output_widget_captures_prints_displays_and_errors(kernel: KernelHarness) -> None:
    code = (
        "import ipywidgets as w\nout = w.Output()\ndisplay(out)\n"
        "with out:\n    print('inside')\n    display('shown')\n    1 / 0\n"
        "print('after')"
    )
    run = ok(kernel, code)  # the error is shown in the widget and suppressed, as under ipykernel
    cell_id = run.reply["parent_header"]["msg_id"]
    out_id = model_id(run.of_type("display_data")[0])
    after_view = shown(run)[3:]
    assert [m["msg_type"] for m in after_view] == [
        "comm_msg",
        "stream",
        "display_data",
        "error",
        "comm_msg",
        "stream",
    ]
    assert output_msg_ids(after_view, out_id) == [cell_id, ""]
    assert [m["content"]["text"] for m in run.of_type("stream")] == ["inside\n", "after\n"]
    assert after_view[2]["content"]["data"] == {"text/plain": "'shown'"}
    error = after_view[3]
    assert error["content"]["ename"] == "ZeroDivisionError"
    assert any("line 7" in line for line in error["content"]["traceback"])
    assert all(m["parent_header"]["msg_id"] == cell_id for m in run.iopub)

    run = ok(kernel, "out.clear_output()\nout.append_stdout('appended\\n')")
    assert [m["msg_type"] for m in shown(run)] == ["comm_msg", "clear_output", "comm_msg", "comm_msg"]
    assert shown(run)[1]["content"] == {"wait": False}
    outputs = shown(run)[3]["content"]["data"]["state"]["outputs"]
    assert outputs == [{"output_type": "stream", "name": "stdout", "text": "appended\n"}]

    run = ok(kernel, "from IPython.display import HTML\nout.append_display_data(HTML('<b>h</b>'))")
    (state,) = [m["content"]["data"]["state"] for m in run.of_type("comm_msg")]
    assert state["outputs"][-1] == {
        "output_type": "display_data",
        "data": {"text/html": "<b>h</b>", "text/plain": "<IPython.core.display.HTML object>"},
        "metadata": {},
    }
