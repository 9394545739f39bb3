"""get_ipython() and IPython.display through a real kernel: the messages ipykernel sends for the same cells.

The expected contents were taken from ipykernel 7 (IPython 9) running the same cells.
"""

from __future__ import annotations

import pytest

from tests.harness import KernelHarness

pytest.importorskip("IPython")

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def ok(kernel: KernelHarness, code: str) -> list[dict]:
    run = kernel.execute(code)
    assert run.content["status"] == "ok", run.content
    return [m for m in run.iopub if m["msg_type"] not in ("status", "execute_input")]


# Nothing of these is imported at start: IPython compatibility, and what libraries check to find
# a notebook (docs/ipython.md), cost only the cells that use them.
NOT_AT_START = [
    "IPython",
    "ipykernel",
    "ipywidgets",
    "comm",
    "tqdm",
    "rich",
    "plotly",
    "sympy",
    "altair",
    "bokeh",
    "polars",
    "ipympl",
    "pandas",
    "matplotlib",
    "anywidget",
    "numpy",
]


def test_kernel_start_does_not_import_ipython(fresh_kernel: KernelHarness) -> None:
    lazy = "fastkernel.interpreter.notebooklibs"  # imported with the first library it adapts
    run = fresh_kernel.execute(
        f"import sys\nsorted(m for m in sys.modules if m.split('.')[0] in {NOT_AT_START} or m == {lazy!r})"
    )
    assert run.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "[]"
    assert fresh_kernel.execute("get_ipython().__class__.__name__").of_type("execute_result")[0]["content"][
        "data"
    ]["text/plain"] == repr("FastKernelShell")


def test_ipython_display_objects(kernel: KernelHarness) -> None:
    ok(
        kernel,
        "from IPython.display import display, HTML, Markdown, SVG, JSON, Javascript, Latex, Pretty, Image",
    )
    svg = '<svg xmlns="http://www.w3.org/2000/svg"></svg>'
    code = (
        f"import base64\ndisplay(HTML('<b>x</b>'), Markdown('*m*'), SVG({svg!r}), JSON({{'a': 1}}),"
        f" Javascript('1+1'), Latex('$x$'), Pretty('pp'), Image(data=base64.b64decode({PNG!r})))"
    )
    shown = ok(kernel, code)
    assert [m["msg_type"] for m in shown] == ["display_data"] * 8
    assert [m["content"]["data"] for m in shown] == [
        {"text/plain": "<IPython.core.display.HTML object>", "text/html": "<b>x</b>"},
        {"text/plain": "<IPython.core.display.Markdown object>", "text/markdown": "*m*"},
        {
            "text/plain": "<IPython.core.display.SVG object>",
            "image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg"/>',
        },
        {"text/plain": "<IPython.core.display.JSON object>", "application/json": {"a": 1}},
        {"text/plain": "<IPython.core.display.Javascript object>", "application/javascript": "1+1"},
        {"text/plain": "<IPython.core.display.Latex object>", "text/latex": "$x$"},
        {"text/plain": "pp"},
        {"text/plain": "<IPython.core.display.Image object>", "image/png": PNG},
    ]
    assert shown[3]["content"]["metadata"] == {"application/json": {"expanded": False, "root": "root"}}
    assert all(m["content"]["transient"] == {} for m in shown)
    (result,) = ok(kernel, "HTML('<i>r</i>')")
    assert result["msg_type"] == "execute_result"
    assert result["content"]["data"] == {
        "text/plain": "<IPython.core.display.HTML object>",
        "text/html": "<i>r</i>",
    }


def test_ipython_display_ids_update_and_clear(kernel: KernelHarness) -> None:
    code = (
        "from IPython.display import display, update_display, clear_output\n"
        "from IPython.display import publish_display_data, DisplayHandle\n"
        "h = display('a', display_id='d1')\nupdate_display('b', display_id='d1')\nh.update('c')\n"
        "publish_display_data({'text/plain': 'p'}, metadata={'m': 1})\nclear_output(wait=True)\n"
        "assert isinstance(h, DisplayHandle)"
    )
    shown = ok(kernel, code)
    assert [(m["msg_type"], m["content"]) for m in shown] == [
        ("display_data", {"data": {"text/plain": "'a'"}, "metadata": {}, "transient": {"display_id": "d1"}}),
        (
            "update_display_data",
            {"data": {"text/plain": "'b'"}, "metadata": {}, "transient": {"display_id": "d1"}},
        ),
        (
            "update_display_data",
            {"data": {"text/plain": "'c'"}, "metadata": {}, "transient": {"display_id": "d1"}},
        ),
        ("display_data", {"data": {"text/plain": "p"}, "metadata": {"m": 1}, "transient": {}}),
        ("clear_output", {"wait": True}),
    ]


def test_ipython_get_ipython_is_the_kernel_shell(kernel: KernelHarness) -> None:
    code = (
        "import IPython\nfrom IPython import get_ipython as g\n"
        "from IPython.core.getipython import get_ipython as g2\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = get_ipython()\n"
        "print(g() is ip, g2() is ip, IPython.get_ipython() is ip,"
        " InteractiveShell.initialized(), InteractiveShell.instance() is ip)"
    )
    (out,) = ok(kernel, code)
    assert out["content"]["text"] == "True True True True True\n"


def test_set_next_input_execution_count_and_parent(kernel: KernelHarness) -> None:
    code = (
        "ip = get_ipython()\nip.set_next_input('hello')\n"
        "print(ip.execution_count, ip.get_parent()['header']['msg_id'], ip.kernel.get_parent() is not None)"
    )
    run = kernel.execute(code)
    assert run.content["payload"] == [{"source": "set_next_input", "text": "hello", "replace": False}]
    count, msg_id, has_parent = run.stream_text().split()
    assert int(count) == run.content["execution_count"] + 1  # IPython counts the cell before it runs
    assert msg_id == run.reply["parent_header"]["msg_id"] and has_parent == "True"


def test_showtraceback_publishes_an_error_for_the_cell(kernel: KernelHarness) -> None:
    run = kernel.execute(
        "print('before')\ntry:\n    1 / 0\nexcept Exception:\n"
        "    get_ipython().showtraceback()\nprint('after')"
    )
    assert run.content["status"] == "ok"  # shown, not raised, as in ipykernel
    shown = [m for m in run.iopub if m["msg_type"] in ("stream", "error")]
    assert [m["msg_type"] for m in shown] == ["stream", "error", "stream"]
    error = shown[1]
    assert error["parent_header"]["msg_id"] == run.reply["parent_header"]["msg_id"]
    assert (
        error["content"]["ename"] == "ZeroDivisionError" and error["content"]["evalue"] == "division by zero"
    )
    assert any(", line 3" in line and "Cell In[" in line for line in error["content"]["traceback"])


def test_kernel_comm_manager_and_events(kernel: KernelHarness) -> None:
    code = (
        "import comm\nip = get_ipython()\nprint(ip.kernel.comm_manager is comm.get_comm_manager())\n"
        "seen = []\ndef count():\n    seen.append(1)\nip.events.register('post_execute', count)"
    )
    assert ok(kernel, code)[0]["content"]["text"] == "True\n"
    (out,) = ok(kernel, "print(len(seen))\nget_ipython().events.unregister('post_execute', count)")
    assert out["content"]["text"] == "1\n"  # after the registering cell, before this one ended
    run = kernel.execute("get_ipython().no_such_thing")
    assert run.content["status"] == "error" and run.content["ename"] == "AttributeError"
    assert "fastkernel's get_ipython() shell has no attribute 'no_such_thing'" in run.content["evalue"]


def test_ipython_magic_decorators_register_with_fastkernel(kernel: KernelHarness) -> None:
    code = (
        "from IPython.core.magic import register_line_magic, register_cell_magic\n"
        "@register_line_magic\ndef twice(line):\n    return line * 2\n"
        "@register_cell_magic('wrap')\ndef wrap(line, cell):\n    return f'<{cell}>'\n"
        "from fastkernel.interpreter.magics import registry\n"
        "print('twice' in registry.LINE, 'wrap' in registry.CELL)"
    )
    (out,) = ok(kernel, code)
    assert out["content"]["text"] == "True True\n"


def test_enable_matplotlib_turns_on_the_inline_backend(kernel: KernelHarness) -> None:
    pytest.importorskip("matplotlib")
    (out,) = ok(
        kernel, "import matplotlib\nprint(get_ipython().enable_matplotlib(), matplotlib.get_backend())"
    )
    assert (
        out["content"]["text"]
        == "('inline', 'module://fastkernel.mplinline') module://fastkernel.mplinline\n"
    )
