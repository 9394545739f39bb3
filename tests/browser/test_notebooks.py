"""A fastkernel notebook run through the UI of JupyterLab 4 and of Notebook 7: what the page shows."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenNotebook
from tests.browser.harness import NotebookPage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# The raising cell is last: Run All stops at an error, as it should.
CELLS = [
    "print('hello')",
    "from IPython.display import HTML, display\ndisplay(HTML('<b id=\"fk-bold\">bold</b>'))",
    "1 + 1",
    "raise ValueError('fk-boom')",
]


def check_outputs(nb: NotebookPage) -> None:
    """What a user sees after running CELLS: a print, bold HTML, ``[n]: 2`` and the error."""
    counts = [nb.execution_count(i) for i in range(len(CELLS))]
    assert counts == [1, 2, 3, 4], counts

    assert nb.output_text(0) == "hello"
    stdout = nb.outputs_of_type(0, "application/vnd.jupyter.stdout")
    expect(stdout).to_have_text("hello")

    bold = nb.outputs(1).locator("b#fk-bold")
    expect(bold).to_be_visible()
    expect(bold).to_have_text("bold")
    assert nb.outputs_of_type(1, "text/html").count() == 1

    assert nb.output_text(2) == "2"
    assert nb.output_prompt(2) == "[3]:"  # Out[3]: the execute_result's prompt

    error = nb.outputs_of_type(3, "application/vnd.jupyter.stderr")
    expect(error).to_be_visible()
    expect(error).to_contain_text("ValueError")
    expect(error).to_contain_text("fk-boom")


def test_lab_runs_a_fastkernel_notebook(open_in_lab: OpenNotebook) -> None:
    nb = open_in_lab(CELLS)
    assert nb.kernel_name() == "Python 3 (fastkernel)"
    nb.screenshot("opened")
    nb.run_all()
    nb.screenshot("ran-all")
    check_outputs(nb)


def test_notebook7_runs_a_fastkernel_notebook(open_in_notebook: OpenNotebook) -> None:
    nb = open_in_notebook(CELLS)
    assert nb.kernel_name() == "Python 3 (fastkernel)"
    nb.screenshot("opened")
    nb.run_all()
    nb.screenshot("ran-all")
    check_outputs(nb)


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_shift_enter_runs_one_cell_at_a_time(app: str, request: pytest.FixtureRequest) -> None:
    open_notebook: OpenNotebook = request.getfixturevalue(f"open_in_{app}")
    nb = open_notebook(["x = 20", "x + 22", "print(x * 2)"])
    nb.run_cell(1)  # before x exists: NameError
    expect(nb.outputs(1)).to_contain_text("NameError")
    nb.run_cell(0)
    nb.run_cell(1)
    assert nb.execution_count(0) == 2
    assert nb.execution_count(1) == 3
    assert nb.output_text(1) == "42"
    assert nb.execution_count(2) is None  # never run
    expect(nb.outputs(2)).to_have_count(0)
    nb.screenshot("shift-enter")
    assert re.fullmatch(r"\[3\]:", nb.output_prompt(1))
