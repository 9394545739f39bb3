"""Libraries that look for a notebook kernel, through a real kernel: the messages ipykernel sends.

The expected message sequences were taken from ipykernel 7.4 (IPython 9) running the same
cells; tests/differential runs whole notebooks of these libraries under both kernels. Here:
what notebook outputs do not show (widget updates, comm messages, the execute_reply), and
that each library's check is answered only once a cell imports it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import Execution, KernelHarness


def ok(kernel: KernelHarness, code: str) -> Execution:
    run = kernel.execute(code)
    assert run.content["status"] == "ok", run.content
    assert run.stream_text("stderr") == "", run.stream_text("stderr")
    return run


def result_text(run: Execution) -> str:
    return str(run.of_type("execute_result")[0]["content"]["data"]["text/plain"])


def mimes(msg: dict[str, Any]) -> set[str]:
    return set(msg["content"]["data"])


def widget_updates(run: Execution) -> list[dict[str, Any]]:
    return [
        m["content"]["data"]["state"]
        for m in run.of_type("comm_msg")
        if m["content"]["data"].get("method") == "update"
    ]


def test_tqdm_auto_is_a_widget_bar_updated_in_place_and_closed(fresh_kernel: KernelHarness) -> None:
    pytest.importorskip("tqdm")
    pytest.importorskip("ipywidgets")
    assert result_text(ok(fresh_kernel, "import sys\n'ipykernel.zmqshell' in sys.modules")) == "False"
    run = ok(
        fresh_kernel, "from tqdm.auto import tqdm\nbar = tqdm(total=3, desc='x')\nbar.update(3)\nbar.close()"
    )
    models = [m["content"]["data"]["state"]["_model_name"] for m in run.of_type("comm_open")]
    assert {"FloatProgressModel", "HTMLModel", "HBoxModel"} <= set(models)
    (shown,) = run.of_type("display_data")
    assert mimes(shown) == {"application/vnd.jupyter.widget-view+json", "text/plain"}
    updates = widget_updates(run)
    assert {"value": 3.0} in updates  # the bar itself, updated in place
    assert updates[-1] == {"bar_style": "success"}  # closed after reaching its total
    assert run.stream_text("stdout") == ""
    # The cost of tqdm's check: ipykernel's shell module, imported for that cell only.
    assert result_text(ok(fresh_kernel, "'ipykernel.zmqshell' in sys.modules")) == "True"
    run = ok(fresh_kernel, "gone = tqdm(total=2, leave=False)\ngone.update(2)\ngone.close()")
    assert len(run.of_type("comm_close")) == 1 and widget_updates(run)[-1] == {"visibility": "hidden"}


def test_rich_print_console_table_and_traceback(fresh_kernel: KernelHarness) -> None:
    pytest.importorskip("rich")
    assert result_text(ok(fresh_kernel, "type(get_ipython()).__name__")) == "'FastKernelShell'"
    run = ok(fresh_kernel, "import rich\nrich.print('[bold]hi[/bold]')")
    (shown,) = run.of_type("display_data")
    assert mimes(shown) == {"text/html", "text/plain"} and "<span" in shown["content"]["data"]["text/html"]
    assert run.stream_text("stdout") == ""
    # rich reads the shell's class name; it was given ipykernel's when rich.console was imported
    assert result_text(ok(fresh_kernel, "type(get_ipython()).__name__")) == "'ZMQInteractiveShell'"
    run = ok(fresh_kernel, "from rich.table import Table\nt = Table('a')\nt.add_row('1')\nt")
    assert mimes(run.of_type("execute_result")[0]) == {"text/html", "text/plain"}
    run = fresh_kernel.execute("from rich.traceback import install\n_ = install()\n1 / 0")
    assert run.content["status"] == "error" and run.content["ename"] == "ZeroDivisionError"
    assert run.of_type("error") == []  # rich shows it instead, as under ipykernel
    (shown,) = run.of_type("display_data")
    text = shown["content"]["data"]["text/plain"]
    assert "Traceback" in text and "ZeroDivisionError" in text and "fastkernel" not in text


def test_rich_extension_formats_results(fresh_kernel: KernelHarness) -> None:
    pytest.importorskip("rich")
    loaded = ok(fresh_kernel, "%load_ext rich")
    assert loaded.types == ["status", "execute_input", "status"]  # quietly, as under ipykernel
    run = ok(fresh_kernel, "[1, 2]")
    assert "\x1b[1;36m1\x1b[0m" in result_text(run)  # rich's highlighting in text/plain
    again = ok(fresh_kernel, "%load_ext rich")  # a second load is a no-op, as in IPython
    assert again.stream_text("stderr") == ""


def test_plotly_figure_is_one_display_data_with_plotlys_mime_type(kernel: KernelHarness) -> None:
    pytest.importorskip("plotly")
    run = ok(kernel, "import plotly.express as px\nfig = px.scatter(x=[1, 2], y=[2, 1])\nfig")
    assert run.of_type("execute_result") == []  # plotly's _ipython_display_ shows it
    (shown,) = run.of_type("display_data")
    assert mimes(shown) == {"application/vnd.plotly.v1+json"}
    assert result_text(ok(kernel, "import plotly.io as pio\npio.renderers.default")) == "'plotly_mimetype'"
    (shown,) = ok(kernel, "fig.show()").of_type("display_data")
    assert mimes(shown) == {"application/vnd.plotly.v1+json"}


def test_sympy_init_printing_gives_latex_and_png(kernel: KernelHarness) -> None:
    pytest.importorskip("sympy")
    pytest.importorskip("matplotlib")
    run = ok(kernel, "import sympy\nsympy.init_printing()\nx = sympy.symbols('x')\nx**2 / 2")
    (result,) = run.of_type("execute_result")
    assert mimes(result) == {"text/plain", "text/latex", "image/png"}
    assert result["content"]["data"]["text/latex"] == "$\\displaystyle \\frac{x^{2}}{2}$"


def test_ipympl_widget_backend_shows_a_canvas_widget(fresh_kernel: KernelHarness) -> None:
    pytest.importorskip("ipympl")
    run = ok(fresh_kernel, "%matplotlib widget\nimport matplotlib.pyplot as plt\nplt.plot([1, 2]);")
    models = [m["content"]["data"]["state"]["_model_name"] for m in run.of_type("comm_open")]
    assert "MPLCanvasModel" in models and "ToolbarModel" in models
    (shown,) = run.of_type("display_data")
    assert mimes(shown) == {
        "application/vnd.jupyter.widget-view+json",
        "image/png",
        "text/html",
        "text/plain",
    }
    assert result_text(ok(fresh_kernel, "import matplotlib\nmatplotlib.get_backend()")) == repr(
        "module://ipympl.backend_nbagg"
    )
    # and back to inline figures
    run = ok(fresh_kernel, "%matplotlib inline\nplt.figure()\nplt.plot([1, 2]);")
    (shown,) = run.of_type("display_data")
    assert mimes(shown) == {"image/png", "text/plain"}


def test_bokeh_notebook_output(kernel: KernelHarness) -> None:
    pytest.importorskip("bokeh")
    code = (
        "from bokeh.plotting import figure, show, output_notebook\n"
        "output_notebook(hide_banner=True)\n"
        "p = figure(width=200, height=100)\n"
        "p.line([1, 2], [2, 1])\n"
        "show(p)"
    )
    shown = ok(kernel, code).of_type("display_data")
    assert [mimes(m) for m in shown] == [
        {"application/javascript", "application/vnd.bokehjs_load.v0+json"},
        {"text/html"},
        {"application/javascript", "application/vnd.bokehjs_exec.v0+json"},
    ]


def test_dataframe_libraries_see_a_notebook(kernel: KernelHarness) -> None:
    pytest.importorskip("polars")
    pytest.importorskip("pandas")
    run = ok(kernel, "from polars._utils.various import _in_notebook\n_in_notebook()")
    assert result_text(run) == "True"  # polars reads 'IPKernelApp' in get_ipython().config
    # pandas asks whether the shell's class name has "zmq" in it (its text layout depends on it)
    run = ok(
        kernel, "import pandas as pd\nfrom pandas.io.formats import console\nconsole.in_ipython_frontend()"
    )
    assert result_text(run) == "True"
    run = ok(kernel, "from IPython.display import display_html\ndisplay_html(pd.DataFrame({'a': [1]}))")
    assert [mimes(m) for m in run.of_type("display_data")] == [{"text/html"}]  # include=['text/html']


def test_ipython_progress_bar_updates_one_display(kernel: KernelHarness) -> None:
    pytest.importorskip("IPython")
    run = ok(kernel, "from IPython.display import ProgressBar\nfor _ in ProgressBar(2):\n    pass")
    assert [m["msg_type"] for m in run.iopub if "display" in m["msg_type"]] == ["display_data"] + [
        "update_display_data"
    ] * 3
    ids = {m["content"]["transient"]["display_id"] for m in run.iopub if "display" in m["msg_type"]}
    assert len(ids) == 1
