"""A failing cell in each %xmode mode, as Notebook 7 shows it: coloured, one picture per mode.

The pictures (``tracebacks-<Mode>.png`` in the screenshot directory) are the ones in
docs/images/ that docs/interpreter.md shows; copy them there when the layout changes.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

DEFINE = (
    "def mean(values):\n"
    '    """The arithmetic mean of values."""\n'
    "    total = sum(values)\n"
    "    return total / len(values)\n"
    "\n"
    "def report(groups):\n"
    "    return {name: mean(values) for name, values in groups.items()}"
)
FAILING = "groups = {'a': [1, 2, 3], 'b': []}\nreport(groups)"
MODES = ("Minimal", "Plain", "Context", "Verbose", "Docs")
# What each mode shows beyond the exception line (text as the page renders it).
SHOWS = {
    "Minimal": "Exception reporting mode: Minimal",
    "Plain": "Traceback (most recent call last):",
    "Context": "----> 4     return total / len(values)",
    "Verbose": "values = []",
    "Docs": "The arithmetic mean of values.",
}


def test_notebook7_shows_a_coloured_traceback_in_each_mode(open_in_notebook: OpenNotebook) -> None:
    nb = open_in_notebook([DEFINE, *(f"%xmode {mode}\n{FAILING}" for mode in MODES)])
    nb.run_cell(0)
    for index, mode in enumerate(MODES, start=1):
        nb.run_cell(index)
        error = nb.outputs_of_type(index, "application/vnd.jupyter.stderr").last
        expect(error).to_contain_text("ZeroDivisionError: division by zero")
        expect(nb.code_cells().nth(index)).to_contain_text(SHOWS[mode])
        # The exception name is in a red span, places in green ones: colours, not escape codes.
        name = error.locator("span.ansi-red-intense-fg", has_text="ZeroDivisionError").first
        expect(name).to_be_visible()
        color = name.evaluate("node => getComputedStyle(node).color")
        plain = error.evaluate("node => getComputedStyle(node).color")
        assert color != plain, f"{mode}: the exception name is not coloured ({color})"
        assert "\x1b[" not in error.inner_text() and "[1;31m" not in error.inner_text()
        if mode != "Minimal":
            expect(error.locator("span.ansi-green-fg", has_text="Cell In[").first).to_be_visible()
        nb.code_cells().nth(index).screenshot(path=str(nb.shots.directory / f"tracebacks-{mode}.png"))
    nb.screenshot("all-modes")
