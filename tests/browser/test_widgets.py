"""ipywidgets 8 under fastkernel in JupyterLab: the slider shows, and moving it runs an observer."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenNotebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SLIDER_CELL = """\
import ipywidgets as widgets
from IPython.display import display

slider = widgets.IntSlider(value=5, min=0, max=10, description='fk-slider')
out = widgets.Output()

def on_value(change):
    with out:
        print(f"fk-moved {change['old']}->{change['new']}")

slider.observe(on_value, names='value')
display(slider, out)
"""


def test_lab_slider_moves_and_its_observer_prints(open_in_lab: OpenNotebook) -> None:
    nb = open_in_lab([SLIDER_CELL, "slider.value"])
    nb.run_cell(0)
    view = nb.outputs(0).locator(".jupyter-widgets.widget-slider")
    expect(view).to_be_visible()
    expect(view.locator(".widget-label")).to_have_text("fk-slider")
    readout = view.locator(".widget-readout")
    expect(readout).to_have_text("5")
    nb.screenshot("slider-shown")

    handle = view.locator(".noUi-handle")
    handle.focus()
    nb.page.keyboard.press("ArrowRight")  # one step, as a user moving it with the keyboard
    expect(readout).to_have_text("6")
    printed = nb.outputs(0).locator(".jupyter-widgets.widget-output")
    expect(printed).to_contain_text("fk-moved 5->6")
    nb.screenshot("moved-by-keyboard")

    box = handle.bounding_box()
    track = view.locator(".noUi-target").bounding_box()
    assert box and track
    nb.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    nb.page.mouse.down()
    nb.page.mouse.move(track["x"] + track["width"], box["y"] + box["height"] / 2, steps=5)
    nb.page.mouse.up()
    expect(readout).to_have_text("10")
    expect(printed).to_contain_text("->10")
    nb.screenshot("dragged-to-max")

    nb.run_cell(1)  # the kernel has the value the page shows
    assert nb.output_text(1) == "10"


LOOP_CELL = "import time\nfor _ in range(150):\n    time.sleep(0.1)\nprint('fk-loop-done')"


def test_lab_slider_answers_while_a_cell_runs(open_in_lab: OpenNotebook) -> None:
    """JupyterLab sends widget comm messages over a subshell (commsOverSubshells, its default),
    so the observer runs while the main shell is busy with a 15-second loop."""
    nb = open_in_lab([SLIDER_CELL, LOOP_CELL])
    nb.run_cell(0)
    view = nb.outputs(0).locator(".jupyter-widgets.widget-slider")
    expect(view).to_be_visible()
    nb.start_cell(1)  # the loop runs on the main shell from here
    handle = view.locator(".noUi-handle")
    handle.focus()
    nb.page.keyboard.press("ArrowRight")
    printed = nb.outputs(0).locator(".jupyter-widgets.widget-output")
    expect(printed).to_contain_text("fk-moved 5->6", timeout=10_000)
    loop_prompt = nb.code_cells().nth(1).locator(".jp-InputArea-prompt")
    expect(loop_prompt).to_have_text("[*]:")  # the observer's print came while the loop still ran
    nb.screenshot("observer-printed-during-loop")
    expect(loop_prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=60_000)  # then the loop ends
    expect(nb.outputs(1).first).to_contain_text("fk-loop-done")
