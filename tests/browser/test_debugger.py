"""JupyterLab's visual debugger on fastkernel: toggle it on, click a breakpoint into the editor's
gutter, run the cell, read the variable in the Variables panel, continue."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CELL = "secret = 4242\nresult = secret + 1\nprint('result is', result)"


def test_lab_debugger_stops_at_a_gutter_breakpoint_and_shows_variables(open_in_lab: OpenNotebook) -> None:
    nb = open_in_lab([CELL])
    page = nb.page
    toggle = nb.panel.locator(".jp-DebuggerBugButton button, button.jp-DebuggerBugButton").first
    expect(toggle).to_be_enabled()  # the kernelspec says debugger: true
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    nb.screenshot("debugger-on")

    # a click in the breakpoint gutter, level with the cell's second line
    cell = nb.code_cells().first
    line = cell.locator(".cm-line").nth(1)
    gutter = cell.locator(".cm-gutter.cm-breakpoint-gutter")
    line_box, gutter_box = line.bounding_box(), gutter.bounding_box()
    assert line_box is not None and gutter_box is not None
    page.mouse.click(gutter_box["x"] + gutter_box["width"] / 2, line_box["y"] + line_box["height"] / 2)
    expect(cell.locator(".cm-breakpoint-gutter .cm-gutterElement span.cm-breakpoint-gutter")).to_have_count(1)
    breakpoints = page.locator(".jp-DebuggerBreakpoints")
    expect(breakpoints).to_contain_text("2")  # the panel lists it on line 2

    nb.start_cell(0)
    variables = page.locator(".jp-DebuggerVariables")
    expect(variables).to_contain_text("secret", timeout=60_000)
    expect(variables).to_contain_text("4242")
    expect(page.locator(".jp-DebuggerCallstack")).to_contain_text("<module>")
    nb.screenshot("stopped-variables")

    page.locator("button.jp-DebuggerPausedButton[title='Continue']").first.click()  # the 'Paused' overlay
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text("[1]:")  # (Shift+Enter added a cell below)
    nb.wait_kernel_idle()
    assert nb.output_text(0) == "result is 4243"
    nb.screenshot("continued")
