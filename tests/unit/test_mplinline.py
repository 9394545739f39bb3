"""fastkernel's matplotlib inline backend, in-process: cells run by an Interpreter."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from fastkernel.interpreter import inlinefigures
from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.formatting import (
    format_object,
    register_type_formatter,
    unregister_type_formatter,
)

# -- the type formatter registry (no matplotlib needed) ------------------------------------


class Base:
    def _repr_html_(self) -> str:
        return "<i>base</i>"


class Derived(Base):
    pass


def test_type_formatters_by_name_or_class_along_the_mro() -> None:
    register_type_formatter(f"{__name__}.Base", "text/html", lambda obj: "<b>by name</b>")
    register_type_formatter(Base, "image/png", lambda obj: (b"\x89PNG", {"width": 1}))
    try:
        data, metadata = format_object(Derived())
        assert data["text/html"] == "<b>by name</b>"  # before the _repr_html_ method
        assert base64.b64decode(data["image/png"]) == b"\x89PNG"
        assert metadata == {"image/png": {"width": 1}}
        register_type_formatter(Derived, "text/html", lambda obj: "<b>derived</b>")
        assert format_object(Derived())[0]["text/html"] == "<b>derived</b>"
        assert format_object(Base())[0]["text/html"] == "<b>by name</b>"
        unregister_type_formatter(Derived)
        unregister_type_formatter(Base, "text/html")
        assert format_object(Derived())[0]["text/html"] == "<i>base</i>"
    finally:
        unregister_type_formatter(Base)
        unregister_type_formatter(Derived)


def test_a_failing_type_formatter_is_reported_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(obj: Any) -> Any:
        raise RuntimeError("no ink")

    register_type_formatter(Base, "image/png", broken)
    try:
        data, _ = format_object(Base())
    finally:
        unregister_type_formatter(Base)
    assert "image/png" not in data and "text/plain" in data
    assert "Base: could not make image/png: RuntimeError: no ink" in capsys.readouterr().err


def test_a_type_formatter_wins_over_the_objects_mimebundle() -> None:
    class Bundled:
        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
            return {"text/html": "<p>bundle</p>", "text/markdown": "*bundle*"}

    register_type_formatter(Bundled, "text/html", lambda obj: "<p>type</p>")
    try:  # IPython's order: a registration for the MIME type beats the object's own bundle
        data = format_object(Bundled())[0]
        assert data["text/html"] == "<p>type</p>" and data["text/markdown"] == "*bundle*"
    finally:
        unregister_type_formatter(Bundled)


def test_png_size_and_format_validation() -> None:
    header = (
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + (300).to_bytes(4, "big") + (20).to_bytes(4, "big")
    )
    assert inlinefigures.png_size(header) == (300, 20)
    with pytest.raises(ValueError, match="not a PNG"):
        inlinefigures.png_size(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match="unknown figure format"):
        inlinefigures.set_figure_formats("gif")
    with pytest.raises(ValueError, match="same MIME type"):
        inlinefigures.set_figure_formats("png", "retina")
    assert inlinefigures.get_figure_formats() == (["png"], {"bbox_inches": "tight"})


class FakeRc(dict[str, Any]):
    def _get_backend_or_none(self) -> Any:
        return self.get("backend")


@dataclass
class FakeMatplotlib:
    rcParams: FakeRc = field(default_factory=FakeRc)


def test_default_backend_only_when_the_user_chose_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPLBACKEND", raising=False)
    unset = FakeMatplotlib()
    assert inlinefigures.set_default_backend(unset)
    assert unset.rcParams["backend"] == "module://fastkernel.mplinline"
    from_rc = FakeMatplotlib(FakeRc(backend="svg"))
    assert not inlinefigures.set_default_backend(from_rc)
    assert from_rc.rcParams["backend"] == "svg"
    monkeypatch.setenv("MPLBACKEND", "agg")
    env = FakeMatplotlib()
    assert not inlinefigures.set_default_backend(env) and "backend" not in env.rcParams


def test_outside_a_kernel_the_backend_is_agg_with_a_quiet_show(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    code = (
        "import matplotlib, matplotlib.pyplot as plt, sys\n"
        "plt.plot([1, 2]); plt.show(); plt.gcf().show()\n"
        f"plt.savefig({str(tmp_path / 'out.png')!r})\n"
        "print(matplotlib.get_backend(), matplotlib.is_interactive(), 'IPython' in sys.modules)\n"
    )
    env = {**os.environ, "MPLBACKEND": "module://fastkernel.mplinline"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "module://fastkernel.mplinline False False\n"
    assert done.stderr == ""
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")


# -- cells in-process --------------------------------------------------------------------


@dataclass
class Cells:
    interpreter: Interpreter
    shown: list[tuple[str, dict[str, Any]]]

    def run(self, code: str) -> list[tuple[str, dict[str, Any]]]:
        """Run a cell; return what it displayed, as (kind, data), results included."""
        self.shown.clear()
        outcome = self.interpreter.run_cell(code)
        assert outcome.error is None, outcome.error
        return list(self.shown)


@pytest.fixture
def cells(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cells]:
    pytest.importorskip("matplotlib")
    shown: list[tuple[str, dict[str, Any]]] = []

    def on_result(value: Any) -> None:
        shown.append(("result", format_object(value)[0]))

    interpreter = Interpreter(
        on_result=on_result,
        publish_display=lambda kind, content, target: shown.append(("display", content["data"])),
    )
    interpreter.install_as_main()
    import matplotlib
    import matplotlib.pyplot as plt

    from fastkernel import mplinline

    mplinline.enable()
    mplinline.enable()  # twice is fine
    # pyplot as in a kernel where IPython was not imported (earlier tests may have imported it)
    monkeypatch.setattr(plt, "_REPL_DISPLAYHOOK", plt._ReplDisplayHook.PLAIN)
    monkeypatch.setitem(sys.modules, "IPython", None)  # so plt.ion() keeps it that way
    interpreter.namespace["plt"] = plt
    try:
        yield Cells(interpreter, shown)
    finally:
        plt.close("all")
        mplinline.set_figure_formats("png")
        mplinline.set_close_figures(True)
        interpreter.uninstall()
        plt.switch_backend("agg")
        matplotlib.interactive(False)


def _kinds(shown: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[str]]]:
    return [(kind, sorted(data)) for kind, data in shown]


PNG = ["image/png", "text/plain"]


def test_enable_makes_pyplot_interactive_with_this_backend(cells: Cells) -> None:
    import matplotlib

    assert matplotlib.get_backend() == "module://fastkernel.mplinline"
    assert matplotlib.is_interactive()


def test_a_drawn_figure_shows_at_the_end_of_the_cell_once(cells: Cells) -> None:
    assert _kinds(cells.run("plt.plot([1, 2]);")) == [("display", PNG)]
    assert cells.run("x = 1") == []


def test_show_displays_now_and_closes(cells: Cells) -> None:
    shown = cells.run("plt.plot([1]); plt.plot([2]); plt.figure(); plt.plot([3]);")
    assert len(shown) == 2
    shown = cells.run("plt.plot([1])\nplt.figure(); plt.plot([2])\nplt.show()\nnums = plt.get_fignums()")
    assert _kinds(shown) == [("display", PNG), ("display", PNG)]
    assert cells.interpreter.namespace["nums"] == []


def test_show_with_close_false_keeps_figures_open(cells: Cells) -> None:
    shown = cells.run("plt.plot([1])\nplt.show(close=False)")
    assert len(shown) == 1
    assert cells.run("n = len(plt.get_fignums())") == []
    assert cells.interpreter.namespace["n"] == 1


def test_figure_show_displays_that_figure_once_and_keeps_it_open(cells: Cells) -> None:
    shown = cells.run("fig = plt.figure(); fig.add_subplot().plot([1])\nfig.show()")
    assert _kinds(shown) == [("display", PNG)]
    assert cells.run("n = plt.get_fignums()") == [] and cells.interpreter.namespace["n"] == [1]


def test_last_expression_is_not_shown_again_at_the_end(cells: Cells) -> None:
    shown = cells.run("fig, ax = plt.subplots()\nax.plot([1])\nfig")
    assert _kinds(shown) == [("result", PNG)]


def test_empty_figure_shows_as_text(cells: Cells) -> None:
    shown = cells.run("plt.figure();")
    assert shown == [("display", {"text/plain": "<Figure size 640x480 with 0 Axes>"})]


def test_keeping_figures_open_shows_only_changed_ones(cells: Cells) -> None:
    from fastkernel import mplinline

    mplinline.set_close_figures(False)
    assert len(cells.run("fig, ax = plt.subplots(); ax.plot([1]);")) == 1
    assert cells.run("x = 1") == []
    assert len(cells.run("ax.set_title('again');")) == 1


def test_figures_of_another_backend_are_not_shown_at_the_end(cells: Cells) -> None:
    shown = cells.run("plt.switch_backend('agg')\nplt.plot([1]);")
    assert shown == []


def test_formats_and_print_kwargs(cells: Cells) -> None:
    from PIL import Image

    from fastkernel import mplinline

    mplinline.set_figure_formats("retina", "svg", bbox_inches=None)
    assert mplinline.get_figure_formats() == (["retina", "svg"], {"bbox_inches": None})
    ((kind, data),) = cells.run("fig = plt.figure(figsize=(2, 1), dpi=40)\nfig.add_subplot()\nfig")
    assert kind == "result" and sorted(data) == ["image/png", "image/svg+xml", "text/plain"]
    image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert image.size == (160, 80)
    md = format_object(cells.interpreter.namespace["fig"])[1]
    assert md == {"image/png": {"width": 80, "height": 40}}
    mplinline.set_figure_formats()
    assert cells.run("plt.figure().add_subplot();") == [
        ("display", {"text/plain": "<Figure size 640x480 with 1 Axes>"})
    ]


def test_a_broken_figure_is_reported_and_closed(cells: Cells, capsys: pytest.CaptureFixture[str]) -> None:
    shown = cells.run("plt.title(r'$\\nosuchthing$');")
    assert _kinds(shown) == [("display", ["text/plain"])]
    assert "could not make image/png" in capsys.readouterr().err
    assert cells.run("n = plt.get_fignums()") == [] and cells.interpreter.namespace["n"] == []


def test_pyplot_repl_hook_through_get_ipython_does_not_double_show(
    cells: Cells, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import matplotlib.pyplot as plt

    from fastkernel import mplinline

    class Shell:
        events = cells.interpreter.events

        def enable_gui(self, gui: Any = None) -> None:
            pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = Shell  # type: ignore[attr-defined]
    fake.version_info = (9, 0)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setattr(plt, "_REPL_DISPLAYHOOK", plt._ReplDisplayHook.NONE)
    plt.install_repl_displayhook()
    try:
        assert len(cells.run("plt.plot([1]);")) == 1
        assert cells.run("x = 1") == []
        assert len(cells.run("plt.ioff(); f = plt.figure(); f.add_subplot().plot([1]);")) == 0
        assert cells.run("x = 2") == []
        plt.close("all")
        plt.ion()
        mplinline.set_close_figures(False)
        assert len(cells.run("fig, ax = plt.subplots(); ax.plot([1]);")) == 1
        assert cells.run("x = 3") == []
        assert len(cells.run("ax.set_title('changed');")) == 1  # no stale callback in this mode
        assert cells.run("x = 4") == []
        assert len(cells.run("fig")) == 1
        assert cells.run("x = 5") == []
    finally:
        plt.uninstall_repl_displayhook()


def test_an_ioff_figure_is_not_shown_when_interactive_mode_comes_back(cells: Cells) -> None:
    assert cells.run("plt.ioff(); fig = plt.figure(); fig.add_subplot().plot([1]);") == []
    assert cells.run("plt.ion();") == []
    assert cells.run("x = 1") == []
    assert len(cells.run("plt.show()")) == 1
