"""One frame of a traceback as text: its location, source lines, carets, locals and docstring.

The pieces :mod:`.tbrender` puts together per ``%xmode`` mode. Colours are ANSI SGR codes
(every Jupyter frontend and terminal renders them, nbconvert's HTML too); a
:class:`Palette` without colours returns text unchanged.
"""

from __future__ import annotations

import ast
import io
import itertools
import linecache
import os
import reprlib
import tokenize
import types
from collections.abc import Mapping
from typing import Any

from fastkernel.interpreter.tracebacks import Frame

CONTEXT_BEFORE, CONTEXT_AFTER = 2, 2
MAX_LOCALS = 20  # Verbose: at most this many variables per frame
MAX_VALUE_CHARS = 200
MAX_VALUE_LINES = 5

# SGR codes: IPython's "Neutral" scheme in spirit (red errors, green places, cyan names).
CODES = {
    "ename": "1;31",  # exception class name
    "location": "32",  # Cell In[n], line k / File path:k
    "function": "36",
    "arrow": "1;32",
    "lineno": "32",
    "caret": "1;31",
    "anchor": "31",  # the ~~~ around a caret
    "header": "31",  # the dashes and group borders
    "name": "36",  # Verbose: a variable's name
    "doc": "3",  # Docs: docstrings in italics
    "bad": "33",  # a value whose repr failed
}


class Palette:
    """Wraps text in ANSI codes, or leaves it alone when colours are off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, kind: str, text: str) -> str:
        if not self.enabled or not text:
            return text
        return f"\x1b[{CODES[kind]}m{text}\x1b[0m"


def location(frame: Frame, labels: Mapping[str, str], paint: Palette, *, python_style: bool) -> str:
    """``Cell In[3], line 5, in f`` for cells; files as Python (``File "x.py", line 5, in f``)
    or as IPython (``File ~/x.py:5, in f``) shows them."""
    label = labels.get(frame.filename)
    if label is not None:
        place = f"{label}, line {frame.lineno}"
    elif python_style:
        place = f'File "{frame.filename}", line {frame.lineno}'
    else:
        place = f"File {_short_path(frame.filename)}:{frame.lineno}"
    text = paint("location", place)
    if frame.name != "<module>" or python_style:
        text += f", in {paint('function', frame.name)}"
    return text


def _short_path(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if home != "~" and path.startswith(home + os.sep) else path


def source_lines(frame: Frame) -> list[str]:
    """The lines of the frame's file (cells are in linecache), without line ends; [] if unknown."""
    module_globals = frame.frame.f_globals if frame.frame is not None else None
    try:
        lines = linecache.getlines(frame.filename, module_globals)
    except Exception:  # a module's __loader__.get_source that raises: linecache lets it through
        return []
    return [line.rstrip("\r\n") for line in lines]


def char_columns(frame: Frame, line: str) -> tuple[int, int] | None:
    """The failing span of ``line`` in characters, if it is on one line and not all of it."""
    if frame.colno is None or frame.end_colno is None or frame.end_lineno != frame.lineno:
        return None
    raw = line.encode("utf-8")
    start = len(raw[: frame.colno].decode("utf-8", errors="replace"))
    end = len(raw[: frame.end_colno].decode("utf-8", errors="replace"))
    indent = len(line) - len(line.lstrip())
    if end <= start or (start <= indent and end >= len(line.rstrip())):
        return None  # the whole statement: carets would add nothing (Python shows none either)
    return start, end


def caret_line(line: str, span: tuple[int, int], paint: Palette) -> str:
    """``~~^~~`` under ``line``: carets under the operator of a binary operation or a subscript's
    index, ``~`` under the rest of the span, as Python 3.11 draws it; all carets otherwise."""
    start, end = span
    marks = ["^"] * (end - start)
    anchor = _anchor(line[start:end])
    if anchor is not None:
        marks = ["^" if anchor[0] <= i < anchor[1] else "~" for i in range(end - start)]
    runs = [(mark, len(list(group))) for mark, group in itertools.groupby(marks)]
    return " " * start + "".join(paint("caret" if mark == "^" else "anchor", mark * n) for mark, n in runs)


def _anchor(segment: str) -> tuple[int, int] | None:
    """Where, in ``segment``, the operator of a binary operation or a subscript's index is."""
    if "\n" in segment:
        return None
    try:
        tree = ast.parse(f"(\n{segment}\n)")
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    expr = tree.body[0].value
    raw = segment.encode("utf-8")

    def chars(byte_offset: int | None) -> int:  # ast columns are UTF-8 byte offsets
        return len(raw[: byte_offset or 0].decode("utf-8", errors="replace"))

    if isinstance(expr, ast.BinOp) and expr.left.end_lineno == 2 and expr.right.lineno == 2:
        between = segment[chars(expr.left.end_col_offset) : chars(expr.right.col_offset)]
        start = chars(expr.left.end_col_offset) + len(between) - len(between.lstrip(" ()"))
        end = start + 1
        if end < len(segment) and segment[end] in "*/=<>":  # **, //, ... : two characters
            end += 1
        return start, end
    if isinstance(expr, ast.Subscript) and expr.value.end_lineno == 2:
        return chars(expr.value.end_col_offset), len(segment)
    return None


def context(frame: Frame, lines: list[str], paint: Palette) -> list[str]:
    """Numbered source lines around the failing one, which has an arrow (and carets)."""
    if frame.lineno is None or not 1 <= frame.lineno <= len(lines):
        return []
    first = max(1, frame.lineno - CONTEXT_BEFORE)
    statement_end = min(
        max(frame.lineno, frame.end_lineno or 0), frame.lineno + 3
    )  # a few lines of a long one
    last = min(len(lines), statement_end + CONTEXT_AFTER)
    out = []
    for number in range(first, last + 1):
        digits = str(number)
        text = lines[number - 1]
        if number == frame.lineno:
            marker = "-" * max(1, 5 - len(digits)) + "> " + digits
            out.append(f"{paint('arrow', marker)} {text}".rstrip())
            span = char_columns(frame, text)
            if span is not None:
                out.append(" " * (len(marker) + 1) + caret_line(text, span, paint))
        else:
            out.append(f"{' ' * max(1, 7 - len(digits))}{paint('lineno', digits)} {text}".rstrip())
    return out


class _BoundedRepr(reprlib.Repr):
    """reprlib's bounds for containers; any other object's repr cut, and a raising one named."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = MAX_VALUE_CHARS
        self.maxlong = 60

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception as err:
            return f"<repr of {type(x).__name__} object raised {_describe(err)}>"
        if len(text) > MAX_VALUE_CHARS:
            text = text[: MAX_VALUE_CHARS - 3] + "..."
        return text


def _describe(err: BaseException) -> str:
    try:
        message = str(err)
    except Exception:
        message = ""
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def bounded_repr(value: Any) -> str:
    """``repr(value)`` at most :data:`MAX_VALUE_CHARS` characters and a few lines; never raises."""
    try:
        text = _BoundedRepr().repr(value)
    except Exception as err:  # reprlib's own dispatch can call a raising __repr__ too
        return f"<repr of {type(value).__name__} object raised {_describe(err)}>"
    lines = text.splitlines() or [""]
    if len(lines) > MAX_VALUE_LINES:
        lines = [*lines[:MAX_VALUE_LINES], "..."]
    return "\n".join(lines)[: MAX_VALUE_CHARS + 20]


def _names_in(text: str) -> list[str]:
    """The identifiers in ``text``, in order, each once (tokens, so strings and comments are skipped)."""
    names: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NAME and token.string not in names:
                names.append(token.string)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return names


def variables(frame: Frame, lines: list[str], paint: Palette, indent: str) -> list[str]:
    """Verbose: ``name = value`` for the frame's locals; at module level, the names the failing
    line uses (modules, functions and classes left out: their repr tells nothing new)."""
    live = frame.frame
    if live is None:
        return []
    namespace = live.f_locals
    if live.f_locals is live.f_globals:
        end = frame.end_lineno or frame.lineno or 0
        failing = "\n".join(lines[(frame.lineno or 1) - 1 : end]) if lines else ""
        names = [n for n in _names_in(failing) if n in namespace and not n.startswith("__")]
        skip = (types.ModuleType, types.FunctionType, type, types.BuiltinFunctionType)
        names = [n for n in names if not isinstance(namespace[n], skip)]
    else:
        names = [n for n in namespace if n.isidentifier()]  # not a comprehension's hidden ".0"
    out = []
    for name in names[:MAX_LOCALS]:
        value = bounded_repr(namespace[name])
        if " raised " in value and value.startswith("<repr of"):
            value = paint("bad", value)
        value = value.replace("\n", "\n" + indent + " " * (len(name) + 3))
        out.append(f"{indent}{paint('name', name)} = {value}")
    if len(names) > MAX_LOCALS:
        out.append(f"{indent}[... {len(names) - MAX_LOCALS} more variables]")
    return out


def docstring(frame: Frame) -> str | None:
    """Docs: the first paragraph of the docstring of the function the frame runs, if found."""
    live = frame.frame
    if live is None or frame.name == "<module>":
        return None
    code = live.f_code
    parts = getattr(code, "co_qualname", code.co_name).split(".")
    if "<locals>" in parts:
        return None
    try:
        target: Any = live.f_globals.get(parts[0])
        for part in parts[1:]:
            target = getattr(target, part, None)
        func = getattr(target, "__func__", target)
        if getattr(func, "__code__", None) is not code or not isinstance(func.__doc__, str):
            return None
        doc = func.__doc__.strip()
    except Exception:  # an odd object on the way: no docstring, never a failing traceback
        return None
    return doc.split("\n\n")[0].strip() or None
