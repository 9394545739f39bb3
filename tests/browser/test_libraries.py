"""Notebook libraries under fastkernel in JupyterLab: a tqdm.auto bar, a plotly figure and an
ipympl figure render as they do under ipykernel (their DOM nodes found, screenshots saved)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

TQDM_CELL = "from tqdm.auto import tqdm\nfor _ in tqdm(range(30), desc='fk-bar'):\n    pass"
PLOTLY_CELL = "import plotly.express as px\npx.bar(x=['a', 'b', 'c'], y=[1, 3, 2], title='fk-plotly')"
IPYMPL_CELL = (
    "%matplotlib widget\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([1, 2, 3], [1, 4, 9])\nfig.canvas"
)


def test_lab_renders_tqdm_plotly_and_ipympl(open_in_lab: OpenNotebook) -> None:
    pytest.importorskip("tqdm")
    pytest.importorskip("plotly")
    pytest.importorskip("ipympl")
    nb = open_in_lab([TQDM_CELL, PLOTLY_CELL, IPYMPL_CELL])
    nb.run_cell(0)
    bar = nb.outputs(0).locator(".jupyter-widgets.widget-hprogress, .widget-progress")
    expect(bar.first).to_be_visible()
    expect(nb.outputs(0).first).to_contain_text("fk-bar")
    expect(nb.outputs(0).first).to_contain_text("30/30")
    nb.screenshot("tqdm-widget-bar")
    nb.run_cell(1)
    figure = nb.outputs(1).locator("svg.main-svg").first  # what plotly.js draws
    expect(figure).to_be_visible(timeout=30_000)
    expect(nb.outputs(1).first).to_contain_text("fk-plotly")
    nb.screenshot("plotly-figure")
    nb.run_cell(2, timeout_ms=60_000)
    canvas = nb.outputs(2).locator(".jupyter-matplotlib, .jupyter-matplotlib-figure")
    expect(canvas.first).to_be_visible(timeout=30_000)
    drawn = nb.outputs(2).locator("canvas").first
    expect(drawn).to_be_visible()
    # The kernel sends the figure's pixels over the widget's comm: wait until they are drawn.
    nb.page.wait_for_function(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true; return false; }",
        arg=drawn.element_handle(),
        timeout=30_000,
    )
    nb.screenshot("ipympl-figure")
