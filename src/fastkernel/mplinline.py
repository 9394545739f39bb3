"""fastkernel's matplotlib inline backend: ``module://fastkernel.mplinline``.

In a fastkernel kernel this is matplotlib's default backend (unless the user chose another
one). Figures a cell draws are shown as images when the cell ends, without ``plt.show()``;
``plt.show()`` shows them at once. The rules and the formats are described in
docs/matplotlib.md; the kernel side lives in :mod:`fastkernel.interpreter.inlinefigures`.

Outside a kernel (a script run from a cell with ``MPLBACKEND`` set to this backend) it is
the Agg backend with a ``show()`` that does nothing.

Public functions: :func:`enable` (``%matplotlib inline``), :func:`set_figure_formats`,
:func:`get_figure_formats`, :func:`set_close_figures`, :func:`flush_figures`.
"""

from __future__ import annotations

from typing import Any

import matplotlib
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

from fastkernel.interpreter import inlinefigures
from fastkernel.interpreter.inlinefigures import (
    BACKEND,
    get_figure_formats,
    set_close_figures,
    set_figure_formats,
)

__all__ = [
    "BACKEND",
    "FigureCanvas",
    "FigureManager",
    "enable",
    "flush_figures",
    "get_figure_formats",
    "set_close_figures",
    "set_figure_formats",
    "show",
]


def show(close: bool | None = None, block: bool | None = None) -> None:
    """Display every open figure now; close them unless ``close`` is False (or configured so).

    ``block`` is accepted for pyplot's sake and ignored: nothing here waits.
    """
    inlinefigures.show_figures(close)


def flush_figures() -> None:
    """Show the figures drawn since the last flush, as at the end of a cell."""
    inlinefigures.flush()


class FigureManager(FigureManagerBase):
    """A figure's manager: no window; ``show`` displays the figure in the cell."""

    def show(self) -> None:
        if inlinefigures.in_kernel():
            inlinefigures.show_figure(self.canvas.figure)
        # Outside a kernel: like Agg under a headless Linux, nothing to show on.

    @classmethod
    def pyplot_show(cls, *, block: bool | None = None, close: bool | None = None) -> None:
        show(close=close, block=block)


class FigureCanvas(FigureCanvasAgg):
    """The Agg canvas, except that a redraw request (pyplot's, in interactive mode) is only
    noted: the figure is rendered once, when it is displayed."""

    manager_class = FigureManager
    fastkernel_inline = True  # inlinefigures shows only figures whose canvas says so

    def draw_idle(self, *args: Any, **kwargs: Any) -> None:
        if inlinefigures.in_kernel():
            inlinefigures.mark_drawn(self.figure)
        else:
            super().draw_idle(*args, **kwargs)


def _activate() -> None:
    """Interactive mode, as under ipykernel: pyplot then reports every change of a figure."""
    if inlinefigures.in_kernel():
        matplotlib.interactive(True)
    inlinefigures.register_figure_formatters()


def enable() -> None:
    """Make pyplot use this backend (``%matplotlib inline``); safe to call again."""
    import matplotlib.pyplot as plt

    if matplotlib.get_backend() != BACKEND:
        plt.switch_backend(BACKEND)
    _activate()


_activate()
