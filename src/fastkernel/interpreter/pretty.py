"""The ``p`` that text/plain printers write to: ``_repr_pretty_(p, cycle)`` and registered ones.

IPython formats text/plain with a pretty printer object that objects (``_repr_pretty_``) and
libraries (``display_formatter.formatters['text/plain'].for_type(cls, func)``, sympy's
``init_printing``) write to with ``p.text()``, ``p.breakable()``, ``p.group()`` and
``p.pretty(child)``. :class:`Printer` offers that interface. It records a tree of groups and
lays it out when asked for the text: a group that fits on the rest of the line is written
flat, otherwise each of its breakables becomes a line break at the indentation it was made
with. Objects without a printer are shown with ``repr()``; lists, tuples, sets and dicts are
laid out item by item, so a registered printer applies inside them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MAX_WIDTH = 79
MAX_SEQ_LENGTH = 1000

# Writes obj to the printer; cycle is True when obj is already being printed further out.
Dispatch = Callable[[Any, "Printer", bool], None]


class _Break:
    __slots__ = ("indent", "sep")

    def __init__(self, sep: str | None, indent: int) -> None:
        self.sep = sep  # None: always a line break (p.break_())
        self.indent = indent


class _Group:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[str | _Break | _Group] = []


def _flat_width(group: _Group) -> float:
    width = 0.0
    for item in group.items:
        if isinstance(item, str):
            width += float("inf") if "\n" in item else len(item)
        elif isinstance(item, _Break):
            width += float("inf") if item.sep is None else len(item.sep)
        else:
            width += _flat_width(item)
    return width


class Printer:
    """IPython's pretty printer interface (``IPython.lib.pretty.RepresentationPrinter``).

    Parameters
    ----------
    dispatch
        Writes an object to the printer: what :meth:`pretty` calls for each object.
    """

    def __init__(
        self,
        dispatch: Dispatch,
        max_width: int = MAX_WIDTH,
        newline: str = "\n",
        max_seq_length: int = MAX_SEQ_LENGTH,
    ) -> None:
        self.max_width = max_width
        self.newline = newline
        self.max_seq_length = max_seq_length
        self.indentation = 0
        self._dispatch = dispatch
        self._root = _Group()
        self._stack = [self._root]
        self._printing: list[int] = []  # ids of the objects being printed, outermost first

    # -- what printers call ----------------------------------------------------

    def text(self, obj: Any) -> None:
        """Add text (no line break is made inside it)."""
        self._stack[-1].items.append(str(obj))

    def breakable(self, sep: str = " ") -> None:
        """``sep`` if the group fits on the line, else a line break."""
        self._stack[-1].items.append(_Break(sep, self.indentation))

    def break_(self) -> None:
        """A line break, always."""
        self._stack[-1].items.append(_Break(None, self.indentation))

    def begin_group(self, indent: int = 0, open: str = "") -> None:
        if open:
            self.text(open)
        group = _Group()
        self._stack[-1].items.append(group)
        self._stack.append(group)
        self.indentation += indent

    def end_group(self, dedent: int = 0, close: str = "") -> None:
        self.indentation -= dedent
        if len(self._stack) > 1:
            self._stack.pop()
        if close:
            self.text(close)

    @contextmanager
    def group(self, indent: int = 0, open: str = "", close: str = "") -> Iterator[None]:
        self.begin_group(indent, open)
        try:
            yield
        finally:
            self.end_group(indent, close)

    @contextmanager
    def indent(self, indent: int) -> Iterator[None]:
        self.indentation += indent
        try:
            yield
        finally:
            self.indentation -= indent

    def pretty(self, obj: Any) -> None:
        """Write ``obj`` as the text/plain formatter would, inside what is being printed."""
        cycle = id(obj) in self._printing
        self._printing.append(id(obj))
        try:
            self._dispatch(obj, self, cycle)
        finally:
            self._printing.pop()

    def _enumerate(self, seq: Any) -> Iterator[tuple[int, Any]]:
        """The items of ``seq`` up to ``max_seq_length``, then ``...``."""
        for index, item in enumerate(seq):
            if self.max_seq_length and index >= self.max_seq_length:
                self.text(",")
                self.breakable()
                self.text("...")
                return
            yield index, item

    def flush(self) -> None:
        """Nothing to do: the text is laid out by :meth:`getvalue`."""

    # -- the text --------------------------------------------------------------------

    def getvalue(self) -> str:
        out: list[str] = []
        self._layout(self._root, out, 0, flat=False)
        return "".join(out)

    def _layout(self, group: _Group, out: list[str], column: int, flat: bool) -> int:
        for item in group.items:
            if isinstance(item, str):
                out.append(item)
                column = len(item) - item.rfind("\n") - 1 if "\n" in item else column + len(item)
            elif isinstance(item, _Break):
                if flat and item.sep is not None:
                    out.append(item.sep)
                    column += len(item.sep)
                else:
                    out.append(self.newline + " " * item.indent)
                    column = item.indent
            else:
                fits = flat or column + _flat_width(item) <= self.max_width
                column = self._layout(item, out, column, fits)
        return column
