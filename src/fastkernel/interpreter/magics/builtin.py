"""Help (``obj?``), the namespace (%who, %whos, %reset), files and rich cells, matplotlib."""

from __future__ import annotations

import os
import re
from typing import Any

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import CELL, LINE, Magics, cell_magic, line_magic

_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
_MISSING = object()


# -- help ------------------------------------------------------------------------


def _lookup(magics: Magics, target: str) -> Any:
    """The object ``target`` names (a dotted name, or an expression with indexing), or _MISSING."""
    import builtins

    globals_, locals_ = magics.user_namespaces()
    if not _DOTTED.match(target):
        try:
            return eval(target, globals_, locals_)
        except Exception:  # not found, or not something help can look at
            return _MISSING
    first, *attrs = target.split(".")
    for space in (locals_, globals_, vars(builtins)):
        if space is not None and first in space:
            value = space[first]
            break
    else:
        return _MISSING
    for attr in attrs:
        value = getattr(value, attr, _MISSING)
        if value is _MISSING:
            break
    return value


def _magic_help(magics: Magics, target: str, level: int) -> str | None:
    from fastkernel.interpreter.introspect import describe

    name = target.lstrip("%")
    magics.names()  # loads the table
    tables = (CELL, LINE) if target.startswith("%%") else (LINE, CELL)
    func = next((table[name] for table in tables if name in table), None)
    return None if func is None else describe(func, level, name=target)


def show_help(magics: Magics, target: str, level: int) -> None:
    """Page a description of ``target``, or print that it was not found, as IPython does.

    The text is the one Shift-Tab shows (inspect_request), from the same function.
    """
    from fastkernel.interpreter.introspect import describe

    if target.startswith("%"):
        text = _magic_help(magics, target, level)
    else:
        obj = _lookup(magics, target)
        labels = magics.interpreter.labels
        text = None if obj is _MISSING else describe(obj, level, name=target, labels=labels)
    if text is None:
        print(f"Object `{target}` not found.")
        return
    page = {"source": "page", "data": {"text/plain": text}, "start": 0}
    if not magics.interpreter.add_payload(page):  # no reply to carry it (a thread): print instead
        print(text)


@line_magic("pinfo")
def pinfo(magics: Magics, line: str) -> None:
    """Describe an object, as ``obj?`` does."""
    show_help(magics, line.strip(), 0)


@line_magic("pinfo2")
def pinfo2(magics: Magics, line: str) -> None:
    """Describe an object with its source, as ``obj??`` does."""
    show_help(magics, line.strip(), 1)


@line_magic("lsmagic")
def lsmagic(magics: Magics, line: str) -> None:
    """List the magics."""
    lines, cells = magics.names()
    print("Available line magics:\n" + "  ".join("%" + n for n in lines))
    print("\nAvailable cell magics:\n" + "  ".join("%%" + n for n in cells))


# -- the namespace ------------------------------------------------------------------


def _variables(magics: Magics, line: str) -> list[str]:
    """User variables, only those of the type names in ``line`` if it has any."""
    kinds = set(line.split())
    namespace = magics.interpreter.namespace
    names = magics.user_variables()
    return [n for n in names if not kinds or type(namespace[n]).__name__ in kinds]


@line_magic("who_ls")
def who_ls(magics: Magics, line: str) -> list[str]:
    """The names of the user's variables (of the given type names), as a list."""
    return _variables(magics, line)


@line_magic("who")
def who(magics: Magics, line: str) -> None:
    """Print the names of the user's variables (of the given type names)."""
    names = _variables(magics, line)
    print("\t".join(names) if names else "Interactive namespace is empty.")


def _info(value: Any) -> str:
    try:
        text = str(value).replace("\n", " ")
    except Exception as err:  # a broken __str__
        text = f"<str() failed: {type(err).__name__}>"
    return text if len(text) <= 50 else text[:25] + "<...>" + text[-20:]


@line_magic("whos")
def whos(magics: Magics, line: str) -> None:
    """A table of the user's variables: name, type and a short form of the value."""
    names = _variables(magics, line)
    if not names:
        print("Interactive namespace is empty.")
        return
    namespace = magics.interpreter.namespace
    rows = [(n, type(namespace[n]).__name__, _info(namespace[n])) for n in names]
    name_width = max(8, *(len(r[0]) for r in rows)) + 3
    type_width = max(4, *(len(r[1]) for r in rows)) + 3
    head = "Variable".ljust(name_width) + "Type".ljust(type_width) + "Data/Info"
    print(head + "\n" + "-" * len(head))
    for name, kind, info in rows:
        print(name.ljust(name_width) + kind.ljust(type_width) + info)


@line_magic("reset")
def reset(magics: Magics, line: str) -> None:
    """Delete the user's variables and the history; ``in``/``out``: only that history; ``-f``: no question."""
    args = set(line.split())
    if args - {"-f", "in", "out"}:
        raise UsageError(f"%reset takes -f, in and out, not {' '.join(sorted(args - {'-f', 'in', 'out'}))}")
    if "-f" not in args:
        answer = input("Once deleted, variables cannot be recovered. Proceed (y/[n])? ")
        if not answer.strip().lower().startswith("y"):
            print("Nothing done.")
            return
    history = magics.interpreter.history
    if args & {"in", "out"}:
        history.reset(inputs="in" in args, outputs="out" in args)
        return
    magics.reset_variables()
    history.reset()


# -- files and rich cells -----------------------------------------------------------


@cell_magic("writefile")
def writefile(magics: Magics, line: str, cell: str) -> None:
    """Write the cell to a file (``-a``: append to it)."""
    import shlex

    args = shlex.split(line)
    append = bool({"-a", "--append"} & set(args))
    paths = [a for a in args if a not in ("-a", "--append")]
    if len(paths) != 1:
        raise UsageError("usage: %%writefile [-a] FILENAME")
    path = os.path.expanduser(paths[0])
    verb = "Appending to" if append else "Overwriting" if os.path.exists(path) else "Writing"
    print(f"{verb} {paths[0]}")
    with open(path, "a" if append else "w", encoding="utf-8") as file:
        file.write(cell)


def _rich(mime: str, cell: str, kind: str) -> None:
    from fastkernel.interpreter.display import display

    # The text/plain of IPython's display objects, so notebooks read the same under both kernels.
    display({mime: cell, "text/plain": f"<IPython.core.display.{kind} object>"}, raw=True)


@cell_magic("html", expand=False)
def html(magics: Magics, line: str, cell: str) -> None:
    """Show the cell as HTML."""
    _rich("text/html", cell, "HTML")


@cell_magic("markdown", expand=False)
def markdown(magics: Magics, line: str, cell: str) -> None:
    """Show the cell as Markdown."""
    _rich("text/markdown", cell, "Markdown")


@cell_magic("latex", expand=False)
def latex(magics: Magics, line: str, cell: str) -> None:
    """Show the cell as LaTeX."""
    _rich("text/latex", cell, "Latex")


@cell_magic("svg", expand=False)
def svg(magics: Magics, line: str, cell: str) -> None:
    """Show the cell as an SVG image."""
    _rich("image/svg+xml", cell, "SVG")


@cell_magic("javascript", expand=False)
@cell_magic("js", expand=False)
def javascript(magics: Magics, line: str, cell: str) -> None:
    """Run the cell as JavaScript in the frontend (where the frontend allows it)."""
    _rich("application/javascript", cell, "Javascript")


# -- matplotlib -------------------------------------------------------------------


def _mplinline() -> Any:
    import importlib

    try:
        return importlib.import_module("fastkernel.mplinline")
    except ImportError as err:
        raise UsageError(f"the inline matplotlib backend is not available: {err}") from None


@line_magic("matplotlib")
def matplotlib(magics: Magics, line: str) -> None:
    """``%matplotlib inline`` (or no argument): figures in the cell's output; ``widget``: ipympl's."""
    from fastkernel.interpreter import inlinefigures

    backend = line.strip()
    if backend in ("-l", "--list"):
        print("Available matplotlib backends: ['inline', 'widget', 'ipympl']")
        return
    if backend in inlinefigures.WIDGET_NAMES:
        try:
            inlinefigures.enable_widget_backend()
        except ImportError as err:
            raise UsageError(str(err)) from None
        return
    if backend not in ("", "inline"):
        raise UsageError(f"fastkernel supports %matplotlib inline and widget (ipympl), not {backend!r}")
    _mplinline().enable()


_FIGURE_FORMATS = re.compile(r"InlineBackend\.figure_formats?\s*=\s*(.+)$", re.S)


@line_magic("config")
def config(magics: Magics, line: str) -> None:
    """Only ``InlineBackend.figure_formats = [...]`` (or ``figure_format = 'retina'``)."""
    import ast

    match = _FIGURE_FORMATS.match(line.strip())
    try:
        value = ast.literal_eval(match.group(1).strip()) if match else None
    except (ValueError, SyntaxError):
        value = None
    formats = [value] if isinstance(value, str) else value
    if not isinstance(formats, (list, tuple, set)) or not all(isinstance(f, str) for f in formats):
        raise UsageError(
            "fastkernel's %config only sets InlineBackend.figure_formats = ['png', 'svg', ...] "
            "or InlineBackend.figure_format = 'retina'"
        )
    _mplinline().set_figure_formats(*formats)
