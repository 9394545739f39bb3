"""The table of line and cell magics, and :class:`Magics`, what rewritten cells call.

Implementations register themselves with :func:`line_magic` and :func:`cell_magic` when their
module is imported; :data:`MODULES` are imported on the first lookup, not at kernel start.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from fastkernel.interpreter.magics import UsageError

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter
    from fastkernel.interpreter.magics.system import SList

MODULES = (
    "system",
    "timing",
    "builtin",
    "capture",
    "runscript",
    "history",
    "loadsave",
    "autoawait",
    "extensions",
    "subshell",
    "debugging",
    "errors",
)
LINE: dict[str, Callable[..., Any]] = {}
CELL: dict[str, Callable[..., Any]] = {}
F = TypeVar("F", bound=Callable[..., Any])
# Names the kernel puts in the user namespace: %who does not list them, %reset keeps them.
KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "display"})
_HISTORY = re.compile(r"_(?:i{1,3}|\d+|i\d+|_{1,2}|ih|oh|dh)?$")


def line_magic(name: str, expand: bool = True) -> Callable[[F], F]:
    """Register ``func(magics, line)`` as ``%name``; ``expand``: ``{expr}``/``$name`` in the line."""

    def register(func: F) -> F:
        func.expand = expand  # type: ignore[attr-defined]
        LINE[name] = func
        return func

    return register


def cell_magic(name: str, expand: bool = True) -> Callable[[F], F]:
    """Register ``func(magics, line, cell)`` as ``%%name``."""

    def register(func: F) -> F:
        func.expand = expand  # type: ignore[attr-defined]
        CELL[name] = func
        return func

    return register


def _load() -> None:
    for module in MODULES:
        importlib.import_module(f"{__package__}.{module}")


@dataclass
class Place:
    """Where a magic was called from: a cell's file name and line, and the caller's locals."""

    filename: str | None = None
    lineno: int = 0
    locals: dict[str, Any] | None = None  # None at the top level of a cell


class Magics:
    """Runs magics for one interpreter (``interpreter.magics``).

    The public methods are what ``get_ipython()`` forwards to: :meth:`run_line`,
    :meth:`run_cell`, :meth:`system`, :meth:`getoutput` and :meth:`names`.
    """

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.hidden: set[str] = set(KERNEL_NAMES)  # more names %who and %reset leave alone
        self.place = Place()
        self.previous_dir: str | None = None  # for %cd -
        self.extensions: set[str] = set()  # loaded with %load_ext

    # -- the table --------------------------------------------------------

    def names(self) -> tuple[list[str], list[str]]:
        """Sorted names of the line magics and of the cell magics."""
        _load()
        return sorted(LINE), sorted(CELL)

    def _find(self, table: dict[str, Callable[..., Any]], name: str, prefix: str) -> Callable[..., Any]:
        if name not in table:
            _load()
        if name not in table:
            lines, cells = self.names()
            raise UsageError(
                f"fastkernel has no magic {prefix}{name}.\n"
                f"Line magics: {' '.join('%' + n for n in lines)}\n"
                f"Cell magics: {' '.join('%%' + n for n in cells)}"
            )
        return table[name]

    # -- calling ----------------------------------------------------------

    @contextmanager
    def _called(self, at_line: int | None = None) -> Iterator[Place]:
        """Note the cell frame nearest the caller (for ``{expr}``, %time's lines) while in a magic."""
        previous = self.place
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename not in self.interpreter.labels:
            frame = frame.f_back
        if frame is None:
            self.place = Place()
        else:
            own = frame.f_locals if frame.f_locals is not frame.f_globals else None
            self.place = Place(frame.f_code.co_filename, at_line or frame.f_lineno, own)
        del frame
        try:
            yield self.place
        finally:
            self.place = previous

    def run_line(self, name: str, line: str = "") -> Any:
        """Run ``%name line``; return its value."""
        if name.startswith("%"):
            raise UsageError(f"%{name} is a cell magic: it must be the first line of its cell")
        func = self._find(LINE, name, "%")
        with self._called():
            if func.expand:  # type: ignore[attr-defined]
                line = self.expand(line)
            return func(self, line)

    def run_cell(self, name: str, line: str, cell: str, at_line: int | None = None) -> Any:
        """Run ``%%name line`` on the body ``cell``; ``at_line`` is where the ``%%`` line is."""
        func = self._find(CELL, name, "%%")
        with self._called(at_line):
            if func.expand:  # type: ignore[attr-defined]
                line = self.expand(line)
            return func(self, line, cell)

    def system(self, cmd: str) -> int:
        """Run ``cmd`` in a shell, its output streamed to the cell; return the exit status."""
        from fastkernel.interpreter.magics.system import run_shell

        with self._called():
            status = run_shell(self.expand(cmd))
        self.interpreter.namespace["_exit_code"] = status
        return status

    def getoutput(self, cmd: str) -> SList:
        """Run ``cmd`` in a shell; return its output (stdout and stderr) as a list of lines."""
        from fastkernel.interpreter.magics.system import getoutput

        with self._called():
            return getoutput(self.expand(cmd))

    def shell(self, cmd: str) -> None:
        """``!cmd`` as a statement: like :meth:`system`, but nothing to display."""
        self.system(cmd)

    def help(self, target: str, level: int = 0) -> None:
        """``obj?`` (``level`` 0) and ``obj??`` (1): put a description on the reply's pager payload."""
        from fastkernel.interpreter.magics.builtin import show_help

        with self._called():
            show_help(self, target, level)

    # -- helpers for implementations ----------------------------------------

    def user_namespaces(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(globals, locals) of the code that called the magic; locals None at a cell's top level."""
        return self.interpreter.namespace, self.place.locals

    def expand(self, text: str) -> str:
        """``{expr}`` and ``$name`` in ``text`` replaced by their values (see system.expand)."""
        if "{" not in text and "$" not in text:
            return text
        from fastkernel.interpreter.magics.system import expand

        return expand(text, *self.user_namespaces())

    def run_code(self, code: str, offset: int = 0) -> Any:
        """Run ``code`` as cell code whose first line is line ``offset + 1`` of the calling cell.

        Returns the value of a last expression. Tracebacks show the calling cell's lines; called
        from outside a cell, ``code`` gets a file name of its own.
        """
        filename = self.place.filename
        if filename is None:
            filename, offset = self.interpreter.sources.register(code, "Magic code"), 0
        return self.interpreter.run_code("\n" * offset + code, filename, self.place.locals)

    def user_variables(self) -> list[str]:
        """Names the user defined, sorted: what %who lists."""
        return sorted(n for n in self.interpreter.namespace if not n.startswith("_") and n not in self.hidden)

    def reset_variables(self) -> None:
        """Delete what the user defined (also ``_x``), keeping the kernel's and history names."""
        namespace = self.interpreter.namespace
        for name in list(namespace):
            dunder = name.startswith("__") and name.endswith("__")
            if not (dunder or name in self.hidden or _HISTORY.match(name)):
                del namespace[name]
