"""The kernel's name and status as JupyterLab and Notebook 7 show them: fastkernel, busy, idle."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from fastkernel.kernelspec import DEFAULT_DISPLAY_NAME
from tests.browser.conftest import OpenNotebook
from tests.browser.harness import EXECUTION_INDICATOR

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# A cell that stays busy until the test creates a file next to the notebook (the kernel's cwd).
WAIT_FOR_FILE = """\
import pathlib, time
while not pathlib.Path('fk-release').exists():
    time.sleep(0.02)
print('released')
"""


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_kernel_indicator_shows_fastkernel_busy_then_idle(app: str, request: pytest.FixtureRequest) -> None:
    open_notebook: OpenNotebook = request.getfixturevalue(f"open_in_{app}")
    nb = open_notebook([WAIT_FOR_FILE])
    release = nb.server.root / "fk-release"
    release.unlink(missing_ok=True)
    assert DEFAULT_DISPLAY_NAME == "Python 3 (fastkernel)"
    expect(nb.panel.locator(".jp-Toolbar-kernelName")).to_have_text(DEFAULT_DISPLAY_NAME)
    indicator = nb.panel.locator(EXECUTION_INDICATOR)
    expect(indicator).to_have_attribute("data-status", "idle")
    tooltip = indicator.locator(".jp-Notebook-ExecutionIndicator-tooltip")  # shown on hover
    expect(tooltip).to_contain_text("Kernel status: Idle")
    if app == "lab":  # Lab's status bar too; Notebook 7 has none
        expect(nb.page.locator(".jp-StatusBar-Widget")).to_contain_text(f"{DEFAULT_DISPLAY_NAME} | Idle")
    nb.screenshot("idle")

    try:
        nb.code_cells().first.locator(".jp-InputPrompt").click()
        nb.page.keyboard.press("Shift+Enter")
        expect(indicator).to_have_attribute("data-status", "busy")
        expect(tooltip).to_contain_text("Kernel status: Busy")
        expect(nb.code_cells().first.locator(".jp-InputArea-prompt")).to_have_text("[*]:")
        if app == "lab":
            expect(nb.page.locator(".jp-StatusBar-Widget")).to_contain_text(f"{DEFAULT_DISPLAY_NAME} | Busy")
        nb.screenshot("busy")
    finally:
        release.touch()  # the cell ends even if an assertion above failed

    expect(nb.outputs(0)).to_have_text("released")
    nb.wait_kernel_idle()
    expect(tooltip).to_contain_text("Kernel status: Idle")
    assert nb.execution_count(0) == 1
    if app == "lab":
        expect(nb.page.locator(".jp-StatusBar-Widget")).to_contain_text(f"{DEFAULT_DISPLAY_NAME} | Idle")
    nb.screenshot("idle-again")
