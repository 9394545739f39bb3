"""matplotlib figures in cells through a real kernel: fastkernel's own inline backend."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Execution, KernelHarness

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

SETUP = "import matplotlib.pyplot as plt\nfrom fastkernel.mplinline import set_figure_formats\n"


def _ok(kernel: KernelHarness, code: str) -> Execution:
    ex = kernel.execute(code)
    assert ex.content["status"] == "ok", ex.content
    return ex


@pytest.fixture
def plt_kernel(kernel: KernelHarness) -> Iterator[KernelHarness]:
    """The module's kernel with pyplot imported; figures and formats reset afterwards."""
    _ok(kernel, SETUP)
    yield kernel
    _ok(kernel, "plt.close('all'); set_figure_formats('png'); plt.ion()")


def _shown(ex: Execution) -> list[dict[str, Any]]:
    """display_data and execute_result contents, in order."""
    return [m["content"] for m in ex.iopub if m["msg_type"] in ("display_data", "execute_result")]


def _png(content: dict[str, Any]) -> Any:
    raw = base64.b64decode(content["data"]["image/png"])
    image = Image.open(io.BytesIO(raw))
    assert image.format == "PNG"
    return image


def test_a_plot_shows_one_png_when_the_cell_ends(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "print('before')\nplt.plot([1, 2, 3])\nprint('after')")
    (shown,) = _shown(ex)
    assert ex.of_type("display_data") and not ex.of_type("execute_result")
    assert set(shown["data"]) == {"image/png", "text/plain"}
    assert shown["data"]["text/plain"].startswith("<Figure size 640x480 with 1 Axes>")
    image = _png(shown)
    assert shown["metadata"]["image/png"] == {"width": image.width, "height": image.height}
    # The figure comes after everything the cell printed.
    kinds = [m["msg_type"] for m in ex.iopub if m["msg_type"] in ("stream", "display_data")]
    assert kinds == ["stream", "display_data"] and ex.stream_text() == "before\nafter\n"


def test_png_pixel_size_follows_figsize_and_dpi(plt_kernel: KernelHarness) -> None:
    ex = _ok(
        plt_kernel,
        "set_figure_formats('png', bbox_inches=None)\n"
        "fig, ax = plt.subplots(figsize=(3, 2), dpi=50)\n"
        "ax.plot([1, 2, 3]);",
    )
    (shown,) = _shown(ex)
    assert _png(shown).size == (150, 100)
    assert shown["metadata"]["image/png"] == {"width": 150, "height": 100}


def test_the_kernel_picks_the_backend_without_leaking_it_to_subprocesses(plt_kernel: KernelHarness) -> None:
    ex = _ok(
        plt_kernel,
        "import matplotlib, os, subprocess, sys\n"
        "print(matplotlib.get_backend(), os.environ.get('MPLBACKEND'))\n"
        "code = 'import matplotlib; print(matplotlib.get_backend())'\n"
        "print(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout)",
    )
    ours, child = ex.stream_text().splitlines()[:2]
    assert ours == "module://fastkernel.mplinline None"
    assert child != "module://fastkernel.mplinline"


def test_show_displays_at_once_and_the_cell_end_does_not_repeat_it(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "plt.plot([1, 2])\nplt.show()\nprint('after show', plt.get_fignums())")
    kinds = [m["msg_type"] for m in ex.iopub if m["msg_type"] in ("stream", "display_data")]
    assert kinds == ["display_data", "stream"]
    assert ex.stream_text() == "after show []\n"
    _png(_shown(ex)[0])


def test_a_closed_figure_is_not_shown(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "plt.plot([1, 2])\nplt.close()")
    assert _shown(ex) == []


def test_a_figure_as_last_expression_is_shown_once(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "fig, ax = plt.subplots()\nax.plot([3, 1, 2])\nfig")
    (shown,) = _shown(ex)
    assert ex.of_type("execute_result") and not ex.of_type("display_data")
    assert set(shown["data"]) == {"image/png", "text/plain"}
    _png(shown)
    # Like a figure shown at the end of a cell, it is closed afterwards; it still displays.
    again = _ok(plt_kernel, "ax.set_title('changed')\nprint(plt.get_fignums())")
    assert _shown(again) == [] and again.stream_text() == "[]\n"
    (redisplayed,) = _shown(_ok(plt_kernel, "fig"))
    _png(redisplayed)


def test_a_figure_from_an_earlier_cell_is_not_shown_again(plt_kernel: KernelHarness) -> None:
    first = _ok(plt_kernel, "plt.plot([1, 2]);")
    assert len(_shown(first)) == 1
    assert _shown(_ok(plt_kernel, "x = 1")) == []
    assert _shown(_ok(plt_kernel, "plt.get_fignums()"))[0]["data"]["text/plain"] == "[]"


def test_display_then_change_shows_the_new_state_at_the_end(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "fig, ax = plt.subplots()\nax.plot([1, 2])\ndisplay(fig)\nax.set_title('late')")
    assert len(ex.of_type("display_data")) == 2
    unchanged = _ok(plt_kernel, "fig, ax = plt.subplots()\nax.plot([1, 2])\ndisplay(fig)")
    assert len(unchanged.of_type("display_data")) == 1


def test_svg_format(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "set_figure_formats('svg')\nplt.plot([1, 2]);")
    (shown,) = _shown(ex)
    assert set(shown["data"]) == {"image/svg+xml", "text/plain"}
    assert "<svg" in shown["data"]["image/svg+xml"]


def test_several_formats_give_one_bundle(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "set_figure_formats('png', 'svg', 'pdf', 'jpeg')\nplt.plot([1, 2]);")
    (shown,) = _shown(ex)
    assert set(shown["data"]) == {"image/png", "image/svg+xml", "application/pdf", "image/jpeg", "text/plain"}
    assert base64.b64decode(shown["data"]["application/pdf"]).startswith(b"%PDF")
    assert Image.open(io.BytesIO(base64.b64decode(shown["data"]["image/jpeg"]))).format == "JPEG"


def test_retina_doubles_pixels_and_halves_the_displayed_size(plt_kernel: KernelHarness) -> None:
    ex = _ok(
        plt_kernel,
        "set_figure_formats('retina', bbox_inches=None)\n"
        "fig, ax = plt.subplots(figsize=(3, 2), dpi=50)\n"
        "ax.plot([1, 2, 3]);",
    )
    (shown,) = _shown(ex)
    assert _png(shown).size == (300, 200)
    assert shown["metadata"]["image/png"] == {"width": 150, "height": 100}


def test_a_rendering_error_goes_to_stderr_and_the_kernel_goes_on(plt_kernel: KernelHarness) -> None:
    ex = _ok(plt_kernel, "fig, ax = plt.subplots()\nax.set_title(r'$\\notacommand$');")
    assert "could not make image/png" in ex.stream_text("stderr")
    assert "notacommand" in ex.stream_text("stderr")
    (shown,) = _shown(ex)
    assert set(shown["data"]) == {"text/plain"}
    # The broken figure is closed with the cell; the next plot works.
    assert _shown(_ok(plt_kernel, "1 + 1"))[0]["data"] == {"text/plain": "2"}
    (good,) = _shown(_ok(plt_kernel, "plt.plot([1, 2]);"))
    _png(good)


def test_ioff_figures_wait_for_show(plt_kernel: KernelHarness) -> None:
    assert _shown(_ok(plt_kernel, "plt.ioff()\nfig, ax = plt.subplots()\nax.plot([1, 2]);")) == []
    assert _shown(_ok(plt_kernel, "x = 2")) == []
    (shown,) = _shown(_ok(plt_kernel, "plt.show()"))
    _png(shown)


def test_with_ipython_imported_first_figures_still_show_once(fresh_kernel: KernelHarness) -> None:
    started = _ok(fresh_kernel, "import sys\nprint('matplotlib' in sys.modules)")
    assert started.stream_text() == "False\n"  # nothing of matplotlib at kernel start
    _ok(fresh_kernel, "import IPython")
    first = _ok(fresh_kernel, "import matplotlib.pyplot as plt\nplt.plot([1, 2]);")
    assert len(_shown(first)) == 1
    second = _ok(fresh_kernel, "fig, ax = plt.subplots()\nax.plot([2, 1])\nfig")
    assert len(_shown(second)) == 1
    assert _shown(_ok(fresh_kernel, "x = 1")) == []
    after_show = _ok(fresh_kernel, "plt.plot([1, 3])\nplt.show()")
    assert len(_shown(after_show)) == 1
    assert _shown(_ok(fresh_kernel, "y = 2")) == []
    # pyplot leaves changes to IPython's post_execute then: a changed open figure still shows.
    kept = _ok(
        fresh_kernel, "from fastkernel import mplinline\nmplinline.set_close_figures(False)\nplt.plot([1]);"
    )
    assert len(_shown(kept)) == 1
    assert len(_shown(_ok(fresh_kernel, "plt.title('changed');"))) == 1
    assert _shown(_ok(fresh_kernel, "z = 3")) == []


def test_interact_shows_the_figure_its_function_draws_on_every_change(plt_kernel: KernelHarness) -> None:
    pytest.importorskip("ipywidgets")
    ex = _ok(
        plt_kernel,
        "from ipywidgets import interact\n"
        "w = interact(lambda x: plt.plot([0, x]) and None, x=(1, 3))\n"
        "slider_id = w.widget.children[0].comm.comm_id",
    )
    first = [c for c in _shown(ex) if "image/png" in c["data"]]
    assert len(first) == 1  # drawn once, inside the interact output, not again at the end
    slider_id = _ok(plt_kernel, "print(slider_id)").stream_text().strip()
    kc = plt_kernel.kc
    msg = kc.session.msg(
        "comm_msg",
        {"comm_id": slider_id, "data": {"method": "update", "state": {"value": 3}, "buffer_paths": []}},
    )
    kc.shell_channel.send(msg)
    changed = Execution({}, plt_kernel.collect_iopub(msg["header"]["msg_id"]))
    (redrawn,) = [c for c in _shown(changed) if "image/png" in c["data"]]
    _png(redrawn)
    assert _shown(_ok(plt_kernel, "x = 1")) == []
