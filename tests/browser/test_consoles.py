"""Consoles for a fastkernel notebook in JupyterLab: on its main shell, and on a subshell."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Busy until the test creates the file next to the notebook (the kernel's working directory).
WAIT_FOR_FILE = """\
import pathlib, time
while not pathlib.Path('fk-release-console').exists():
    time.sleep(0.02)
print('released')
"""


def test_lab_console_for_the_notebook_shares_its_kernel(open_in_lab: OpenNotebook) -> None:
    nb = open_in_lab(["shared = 'fk-shared'"])
    nb.run_cell(0)
    console = nb.open_console()
    cell = console.run("print(shared.upper())")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("FK-SHARED")
    result = console.run("6 * 7")
    assert console.output_text(result) == "42"
    assert "subshell id: None" in console.output_text(console.run("%subshell"))
    assert console.subshell_id() is None
    console.screenshot("console")
    assert len(nb.server.kernels()) == 1


def test_lab_subshell_console_runs_while_the_notebook_is_busy(open_in_lab: OpenNotebook) -> None:
    nb = open_in_lab(["shared = 'fk-shared'", WAIT_FOR_FILE])
    release = nb.server.root / "fk-release-console"
    release.unlink(missing_ok=True)
    nb.run_cell(0)
    console = nb.open_console(subshell=True)  # returns once Lab has the subshell's id
    ids = re.search(r"subshell id: (\S+)", console.output_text(console.run("%subshell")))
    assert ids and ids.group(1) == console.subshell_id(), "the console does not run on its subshell"

    try:
        nb.start_cell(1)  # the main shell is busy until the file exists
        cell = console.run("print(shared.upper())")  # answered by the subshell meanwhile
        expect(cell.locator(".jp-OutputArea-output")).to_have_text("FK-SHARED")
        busy = nb.code_cells().nth(1).locator(".jp-InputArea-prompt")
        expect(busy).to_have_text("[*]:")
        console.screenshot("subshell-while-busy")
    finally:
        release.touch()
    expect(nb.outputs(1)).to_have_text("released")
    nb.wait_kernel_idle()
    console.screenshot("released")
    assert len(nb.server.kernels()) == 1
