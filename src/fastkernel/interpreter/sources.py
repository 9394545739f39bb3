"""Cell sources: a file name per cell, registered in ``linecache``, and where classes were defined.

Each cell gets a file name ``<cell-N>`` (N counts every cell run, so a name is never reused
and stays valid for the life of the kernel) and a label ``Cell In[n]`` for tracebacks and
warnings. The source goes into ``linecache`` with no modification time, which
``linecache.checkcache`` leaves alone; a copy is kept here so that an explicit
``linecache.clearcache()`` in user code does not lose it (see :meth:`CellSources.ensure_cached`).
While the visual debugger is on, a cell is named by its source's hash instead, a real file
that holds the same source (:meth:`CellSources.name_cells_by`, interpreter/debugcells.py).

Functions know their file (``__code__.co_filename``) but classes do not: ``inspect.getfile``
looks for ``__file__`` on the class's module, which ``__main__`` has not.
:meth:`CellSources.class_file` answers that question for the inspect hook.

:func:`has_trailing_semicolon` tells whether a cell's last expression ends with ``;`` (no display).
"""

from __future__ import annotations

import ast
import io
import linecache
import tokenize
from collections.abc import Callable
from typing import Any

_LinecacheEntry = tuple[int, None, list[str], str]


class _ClassQualnames(ast.NodeVisitor):
    """The ``__qualname__`` of every class statement in a module, as Python computes it."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.found: set[str] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stack.append(node.name)
        self.found.add(".".join(self.stack))
        self.generic_visit(node)
        self.stack.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack += [node.name, "<locals>"]
        self.generic_visit(node)
        del self.stack[-2:]

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function


def class_qualnames(source: str) -> frozenset[str]:
    """Qualified names of the classes that ``source`` defines (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    finder = _ClassQualnames()
    finder.visit(tree)
    return frozenset(finder.found)


def _methods_files(cls: type) -> list[str]:
    """``co_filename`` of the functions in ``cls.__dict__`` (methods, properties, ...)."""
    files = []
    for value in vars(cls).values():
        func = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
        code = getattr(func, "__code__", None)
        if code is not None:
            files.append(code.co_filename)
    return files


class CellSources:
    """File names, labels and sources of the cells run so far."""

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}  # "<cell-7>" -> "Cell In[5]"
        self._entries: dict[str, _LinecacheEntry] = {}
        self._classes: dict[str, frozenset[str]] = {}  # filename -> class qualnames (lazy)
        self._seq = 0
        # While the visual debugger is on: the file each cell runs as (interpreter/debugcells.py)
        self._namer: Callable[[str], str] | None = None

    def name_cells_by(self, namer: Callable[[str], str] | None) -> None:
        """From now on give a cell the file name ``namer(source)`` (None: ``<cell-N>`` again)."""
        self._namer = namer

    def register(self, source: str, label: str) -> str:
        """Give ``source`` a new file name, put it in ``linecache``; return the name."""
        self._seq += 1
        namer = self._namer
        filename = f"<cell-{self._seq}>" if namer is None else namer(source)
        lines = source.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        entry: _LinecacheEntry = (len(source), None, lines, filename)
        self._entries.pop(filename, None)  # a hash-named cell run again is the newest entry
        self._classes.pop(filename, None)
        self._entries[filename] = entry
        linecache.cache[filename] = entry
        self.labels[filename] = label
        return filename

    def ensure_cached(self) -> None:
        """Put the cells back into ``linecache`` if something cleared it."""
        if not self._entries or next(reversed(self._entries)) in linecache.cache:
            return  # the usual case, in constant time: clearcache() drops every entry
        missing = {name: entry for name, entry in self._entries.items() if name not in linecache.cache}
        linecache.cache.update(missing)

    def source(self, filename: str) -> str:
        entry = self._entries.get(filename)
        return "".join(entry[2]) if entry else ""

    def _defines(self, filename: str, qualname: str) -> bool:
        if filename not in self._classes:
            self._classes[filename] = class_qualnames(self.source(filename))
        return qualname in self._classes[filename]

    def class_file(self, cls: Any) -> str | None:
        """The cell that defined ``cls``: where its methods were compiled, else the newest
        cell with a class statement of the same qualified name."""
        qualname = getattr(cls, "__qualname__", None)
        if not isinstance(qualname, str):
            return None
        for filename in _methods_files(cls):
            if filename in self._entries and self._defines(filename, qualname):
                self.ensure_cached()
                return filename
        for filename in reversed(self._entries):
            if self._defines(filename, qualname):
                self.ensure_cached()
                return filename
        return None


_INSIGNIFICANT = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
)


def has_trailing_semicolon(source: str, node: ast.stmt) -> bool:
    """Whether the statement ``node`` ends with ``;``.

    Decided on tokens, not text, so a ``;`` in a comment or a string does not count.
    Tokenizing starts at the statement itself, not at the top of the cell.
    """
    lines = io.StringIO(source, newline=None).readlines()  # the compiler's line numbering
    first = lines[node.lineno - 1].encode("utf-8")[node.col_offset :].decode("utf-8")
    last = None
    try:
        for token in tokenize.generate_tokens(io.StringIO("".join([first, *lines[node.lineno :]])).readline):
            if token.type not in _INSIGNIFICANT:
                last = token
    except (tokenize.TokenError, SyntaxError):
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"
