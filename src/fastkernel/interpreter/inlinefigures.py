"""Matplotlib figures in cell output: the kernel side of ``fastkernel.mplinline``.

This module is imported at kernel start and imports nothing of matplotlib: everything that
needs matplotlib runs once matplotlib is imported (an import hook) or once a figure exists.

- :func:`install` (called by ``Interpreter.install_as_main``, which also makes the interpreter
  the running one that the backend asks for) registers the ``pre_execute``/``post_execute``
  callbacks that show the figures a cell drew, and arranges that, when a cell first imports
  matplotlib, (1) the default backend becomes ``module://fastkernel.mplinline`` unless the
  user chose one (``MPLBACKEND`` or ``backend`` in a matplotlibrc), and (2) a ``Figure``
  displays as an image.
- The backend's canvas calls :func:`mark_drawn` instead of drawing (pyplot asks for a redraw
  each time a figure changes in interactive mode); :func:`flush` shows those figures when the
  cell ends, :func:`show_figures` is ``plt.show()``.

No-double-show rules (documented in docs/matplotlib.md):

- a figure is shown at the end of a cell only if the cell changed it (or created it), it is
  still open, and it was not already displayed by this cell (``plt.show()``, ``fig.show()``,
  ``display(fig)`` or ``fig`` as the last expression) and left unchanged after that;
- figures shown at the end of a cell, or by ``plt.show()``, are then closed (unless
  ``set_close_figures(False)``), so they never come back by themselves;
- figures the cell did not touch (from earlier cells, or made under ``plt.ioff()``) are left
  alone.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.formatting import register_type_formatter, unregister_type_formatter
from fastkernel.interpreter.importhooks import after_import
from fastkernel.interpreter.running import current

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter

BACKEND = "module://fastkernel.mplinline"
WIDGET_BACKEND = "module://ipympl.backend_nbagg"  # %matplotlib widget (ipympl)
WIDGET_NAMES = ("widget", "ipympl")
FIGURE = "matplotlib.figure.Figure"

# format name -> (MIME type, savefig format, dpi factor)
FORMATS: dict[str, tuple[str, str, int]] = {
    "png": ("image/png", "png", 1),
    "retina": ("image/png", "png", 2),
    "png2x": ("image/png", "png", 2),
    "svg": ("image/svg+xml", "svg", 1),
    "jpeg": ("image/jpeg", "jpeg", 1),
    "jpg": ("image/jpeg", "jpeg", 1),
    "pdf": ("application/pdf", "pdf", 1),
}
DEFAULT_PRINT_KWARGS: dict[str, Any] = {"bbox_inches": "tight"}

_formats: list[str] = ["png"]
_print_kwargs: dict[str, Any] = dict(DEFAULT_PRINT_KWARGS)
_close_figures = True
_registered_mimes: list[str] = []
# Figures (in order) the running cell drew and has not displayed since; and those it displayed.
_pending: dict[Any, None] = {}
_displayed: dict[Any, None] = {}


# -- being in a kernel ---------------------------------------------------------------------


def install(interpreter: Interpreter) -> list[Callable[[], None]]:
    """Connect figure display to ``interpreter`` (the one being installed); return the undo."""
    # The cell events are registered when matplotlib is first imported (_on_matplotlib):
    # until then no figure can exist, and cells pay nothing for this module.
    cancel_hooks = [
        after_import("matplotlib", lambda matplotlib: _on_matplotlib(matplotlib, interpreter)),
        after_import("ipywidgets.widgets.interaction", _adapt_ipywidgets),
    ]

    def uninstall() -> None:
        for cancel in cancel_hooks:
            cancel()
        for event, callback in (("pre_execute", _start_cell), ("post_execute", flush)):
            if callback in interpreter.events.callbacks[event]:
                interpreter.events.unregister(event, callback)
        _start_cell()

    return [uninstall]


def in_kernel() -> bool:
    """Whether an interpreter is installed (:func:`~fastkernel.interpreter.running.current`)."""
    return current() is not None


def _on_matplotlib(matplotlib: Any, interpreter: Interpreter) -> None:
    """When matplotlib is first imported: default backend, Figure formatters, cell events."""
    set_default_backend(matplotlib)
    register_figure_formatters()
    interpreter.events.register("pre_execute", _start_cell)
    interpreter.events.register("post_execute", flush)


def _adapt_ipywidgets(interaction: Any) -> None:
    """``interact`` shows the figures its function drew, in its output widget.

    ipywidgets does so by calling ``show_inline_matplotlib_plots()`` after the function, which
    only knows matplotlib_inline's backend: it flushes this backend's figures too.
    """
    original = interaction.show_inline_matplotlib_plots

    def show_inline_matplotlib_plots() -> None:
        matplotlib = sys.modules.get("matplotlib")
        if matplotlib is not None and matplotlib.rcParams._get_backend_or_none() == BACKEND:
            flush()
        else:
            original()

    interaction.show_inline_matplotlib_plots = show_inline_matplotlib_plots


def enable_widget_backend() -> str:
    """``%matplotlib widget``: ipympl's interactive figures; ImportError without ipympl.

    As IPython does for any backend: pyplot switches to it, in interactive mode. ipympl shows
    the figures a cell drew itself (its ``post_execute`` callback), as widgets; the inline
    backend's end-of-cell display only ever shows figures of its own canvas.
    """
    import importlib.util

    if importlib.util.find_spec("ipympl") is None:
        raise ImportError("%matplotlib widget needs ipympl (pip install ipympl)")
    import matplotlib
    import matplotlib.pyplot as plt

    plt.switch_backend(WIDGET_BACKEND)
    matplotlib.interactive(True)
    return WIDGET_BACKEND


def set_default_backend(matplotlib: Any) -> bool:
    """Make this kernel's backend matplotlib's default, unless the user picked a backend.

    Done in the import hook rather than with ``MPLBACKEND`` in the kernel's environment: that
    variable would be inherited by every subprocess (``!python script.py``), which is not a
    kernel and should get matplotlib's usual default.
    """
    if os.environ.get("MPLBACKEND"):
        return False
    rc = matplotlib.rcParams
    chosen = rc._get_backend_or_none() if hasattr(rc, "_get_backend_or_none") else rc.get("backend")
    if chosen is not None:
        return False
    rc["backend"] = BACKEND
    return True


# -- formats -------------------------------------------------------------------------------


def set_figure_formats(*formats: str, **print_kwargs: Any) -> None:
    """Choose how figures are sent: any of png (default), retina, svg, jpeg, pdf.

    Several formats give a bundle with one MIME type each. ``retina`` (alias ``png2x``) is a
    PNG at twice the figure's dpi whose metadata gives half its pixel size, so it shows at the
    normal size, sharp on high-density screens. ``print_kwargs`` go to ``savefig`` on top of
    the default ``bbox_inches='tight'`` (pass ``bbox_inches=None`` for the whole figure);
    ``dpi`` overrides the figure's own. No formats: figures show as text only.
    """
    names = [str(f).lower() for f in formats]
    unknown = [f for f in names if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; supported: {', '.join(FORMATS)}")
    mimes = [FORMATS[f][0] for f in dict.fromkeys(names)]
    if len(mimes) != len(set(mimes)):
        raise ValueError(f"figure formats {names} give the same MIME type twice (png and retina?)")
    global _print_kwargs
    _formats[:] = list(dict.fromkeys(names))
    _print_kwargs = {**DEFAULT_PRINT_KWARGS, **print_kwargs}
    if "matplotlib" in sys.modules:
        register_figure_formatters()


def get_figure_formats() -> tuple[list[str], dict[str, Any]]:
    """The current formats and savefig keyword arguments."""
    return list(_formats), dict(_print_kwargs)


def set_close_figures(close: bool) -> None:
    """Whether figures are closed once shown at the end of a cell or by ``plt.show()`` (default True)."""
    global _close_figures
    _close_figures = bool(close)


def close_figures() -> bool:
    return _close_figures


def register_figure_formatters() -> None:
    """Make a matplotlib ``Figure`` display in the chosen formats (see :func:`set_figure_formats`).

    Called when matplotlib is first imported and when the formats change; registering again
    replaces the formatters registered before. Needs matplotlib only once a figure is shown.
    """
    for mime in _registered_mimes:
        unregister_type_formatter(FIGURE, mime)
    _registered_mimes.clear()
    for name in _formats:
        mime = FORMATS[name][0]
        register_type_formatter(FIGURE, mime, _formatter(name))
        _registered_mimes.append(mime)


def _formatter(name: str) -> Callable[[Any], Any]:
    def format_figure(fig: Any) -> Any:
        shown = render(fig, name)
        return shown[0] if shown is not None and not shown[1] else shown  # no empty metadata

    format_figure.__qualname__ = f"format_figure[{name}]"
    return format_figure


def _is_empty(fig: Any) -> bool:
    return not fig.get_children()[1:]  # only the background patch


def render(fig: Any, name: str = "png", **print_kwargs: Any) -> Any:
    """``fig`` in format ``name``: ``(data, metadata)``, or None for an empty figure.

    Rendering counts as displaying ``fig`` in this cell (it is not shown again at the end of
    the cell unless it changes).
    """
    mime, fmt, factor = FORMATS[name]
    if _is_empty(fig):
        fig.stale = False
        return None  # as in IPython: an empty figure shows as its text only
    kwargs = {**_print_kwargs, **print_kwargs}
    dpi = kwargs.get("dpi")
    kwargs["dpi"] = (fig.dpi if dpi in (None, "figure") else dpi) * factor
    buffer = io.BytesIO()
    try:
        fig.canvas.print_figure(buffer, format=fmt, **kwargs)
    finally:
        # Saving restores the figure's dpi afterwards, which marks it changed: not a change.
        _pending.pop(fig, None)
        fig.stale = False
    _displayed[fig] = None
    data = buffer.getvalue()
    metadata: dict[str, Any] = {}
    if mime == "image/png":
        width, height = png_size(data)
        metadata = {"width": width // factor, "height": height // factor}
    if mime == "image/svg+xml":
        return data.decode("utf-8"), metadata
    return data, metadata


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# -- when figures are shown ----------------------------------------------------------------


def mark_drawn(fig: Any) -> None:
    """The backend's ``draw_idle``: ``fig`` changed, show it when the cell ends."""
    _pending[fig] = None


def forget(fig: Any) -> None:
    """``fig`` was shown (or closed): it needs no showing at the end of the cell."""
    _pending.pop(fig, None)


def _start_cell() -> None:
    _pending.clear()
    _displayed.clear()


def _is_inline(fig: Any) -> bool:
    """Whether ``fig`` belongs to this backend (``FigureCanvas.fastkernel_inline``), not another one."""
    return bool(getattr(fig.canvas, "fastkernel_inline", False))


def _open_figures() -> list[Any]:
    from matplotlib._pylab_helpers import Gcf

    return [m.canvas.figure for m in Gcf.get_all_fig_managers() if _is_inline(m.canvas.figure)]


def _stale_means_changed() -> bool:
    """Whether pyplot leaves changed figures stale instead of calling ``draw_idle``.

    pyplot reports changes through ``draw_idle`` only in a plain REPL. Once IPython is
    imported (``get_ipython()`` is this kernel's shell) it leaves figures stale for its own
    ``post_execute`` callback, which may run after this one: then a stale figure counts as
    drawn. (True if pyplot's private state cannot be read.)
    """
    hook = getattr(sys.modules.get("matplotlib.pyplot"), "_REPL_DISPLAYHOOK", None)
    return getattr(hook, "name", "IPYTHON") == "IPYTHON"


def _changed(fig: Any, stale_counts: bool) -> bool:
    return fig in _pending or (stale_counts and bool(fig.stale))


def _display(figures: Iterable[Any]) -> None:
    from fastkernel.interpreter.display import display

    for fig in figures:
        try:
            display(fig)
        except Exception as err:  # never let a figure break the cell or the kernel
            print(f"could not display {fig!r}: {type(err).__name__}: {err}", file=sys.stderr)
        finally:
            forget(fig)
            fig.stale = False  # shown as it is now (also when shown as text only)


def _close(figures: Iterable[Any]) -> None:
    from matplotlib._pylab_helpers import Gcf

    for fig in figures:
        Gcf.destroy_fig(fig)


def show_figures(close: bool | None = None) -> None:
    """``plt.show()``: display every open figure of this backend now (and close them)."""
    if not in_kernel():
        return  # a plain process (a script run from a cell): like Agg, nothing to show on
    figures = _open_figures()
    _display(figures)
    if _close_figures if close is None else close:
        _close(figures)
    else:
        _keep_open(figures)


def show_figure(fig: Any) -> None:
    """``fig.show()``: display this figure now; it stays open."""
    if in_kernel():
        _display([fig])
        _keep_open([fig])


def _keep_open(figures: Iterable[Any]) -> None:
    # Shown on request with the figure left open: the end of the cell does not close it.
    for fig in figures:
        _displayed.pop(fig, None)


def flush() -> None:
    """End of a cell (``post_execute``): show the figures it drew and has not shown."""
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is None or "matplotlib._pylab_helpers" not in sys.modules:
        _start_cell()
        return  # no figure can exist
    try:
        stale_counts = matplotlib.is_interactive() and _stale_means_changed()
        figures = _open_figures()
        drawn = [fig for fig in figures if _changed(fig, stale_counts)]
        touched = [fig for fig in figures if fig in drawn or fig in _displayed]
        _display(drawn)
        if _close_figures:
            _close(touched)
    finally:
        _start_cell()
