"""A notebook executed by nbclient with transport_encryption="required": CurveZMQ on every
channel, provisioned by jupyter_client because the kernelspec declares curve."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from tests.kernels import KERNEL_NAME

pytestmark = pytest.mark.timeout(90)


def test_notebook_runs_with_transport_encryption_required(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nprint('cell one')\nvalue = 6 * 7"),
        nbformat.v4.new_code_cell("value"),
        nbformat.v4.new_code_cell("from IPython.display import display, HTML\ndisplay(HTML('<b>bold</b>'))"),
        nbformat.v4.new_code_cell("1 / 0"),
    ]
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, transport_encryption="required")
    NotebookClient(nb, km=km, timeout=60, allow_errors=True).execute(cwd=str(tmp_path))
    assert km.curve_publickey is not None, "jupyter_client provisioned no CurveZMQ keys"
    first, second, third, fourth = (cell.outputs for cell in nb.cells)
    assert [(o.output_type, o.name, o.text) for o in first] == [("stream", "stdout", "cell one\n")]
    assert [(o.output_type, o.data["text/plain"]) for o in second] == [("execute_result", "42")]
    assert [(o.output_type, o.data["text/html"]) for o in third] == [("display_data", "<b>bold</b>")]
    assert [(o.output_type, o.ename) for o in fourth] == [("error", "ZeroDivisionError")]
