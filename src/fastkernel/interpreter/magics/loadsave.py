"""Code in and out of cells: %save (history ranges to a file) and %load (code into the next cell).

Where code comes from (:func:`find_code`), in this order, as IPython's ``find_user_code``:
history ranges (``4-6``, ``~1/``), a file, an ``http(s)://`` URL (%load only), a string
variable, the source of an object (%load only).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.inputhistory import parse_ranges
from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.history import make_parser, parse_line, ranges, source_of, without_current
from fastkernel.interpreter.magics.registry import Magics, line_magic

if TYPE_CHECKING:
    import argparse


def find_code(magics: Magics, target: str, *, search_ns: bool = False) -> str:
    """The code ``target`` names: history ranges, a file, a URL, a string variable, an object."""
    if parse_ranges(target) is not None:
        return source_of(without_current(magics, ranges(magics, target)))
    path = os.path.expanduser(target)
    if os.path.isfile(path):
        import tokenize

        with tokenize.open(path) as file:  # honours a coding declaration
            return file.read()
    if search_ns and target.startswith(("http://", "https://")):
        return _download(target)
    namespace = magics.interpreter.namespace
    value = namespace.get(target)
    if isinstance(value, str):
        return value
    if search_ns and target in namespace:
        return _object_source(target, value)
    raise UsageError(f"`{target}` was not found in history, as a file, url, nor in the user namespace.")


def _download(url: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  # the user's own URL
            data: bytes = response.read()
    except OSError as err:
        raise UsageError(f"%load: could not read {url}: {err}") from None
    return data.decode("utf-8", "replace")


def _object_source(name: str, value: Any) -> str:
    import inspect

    try:
        return inspect.getsource(value)
    except (OSError, TypeError) as err:
        raise UsageError(f"%load: no source for `{name}`: {err}") from None


# -- %save ----------------------------------------------------------------------------


@functools.cache
def _save_parser() -> argparse.ArgumentParser:
    parser = make_parser("%save")
    parser.add_argument("-r", dest="raw", action="store_true", help="raw input (the same here)")
    parser.add_argument("-f", dest="force", action="store_true", help="overwrite without asking")
    parser.add_argument("-a", dest="append", action="store_true", help="append to the file")
    parser.add_argument("filename")
    parser.add_argument("code", nargs="+", help="history ranges, or a string variable")
    return parser


def _may_write(path: str, force: bool) -> bool:
    """Whether to overwrite ``path``: it is new, ``force``, or the user says so."""
    if force or not os.path.exists(path):
        return True
    try:
        answer = input(f"File `{path}` exists. Overwrite (y/[N])? ")
    except Exception as err:  # no stdin (allow_stdin false, a thread)
        raise UsageError(
            f"File `{path}` exists: use %save -f to overwrite it or -a to append ({err})"
        ) from None
    return answer.strip().lower().startswith("y")


@line_magic("save")
def save(magics: Magics, line: str) -> None:
    """``%save [-f] [-a] FILE RANGES``: write history ranges (or a string variable) to FILE.

    ``.py`` is added unless FILE ends in ``.py`` or ``.ipy``; ``-a`` appends, ``-f`` overwrites
    without asking.
    """
    args = parse_line(_save_parser(), line)
    path = os.path.expanduser(args.filename)
    if not path.endswith((".py", ".ipy")):
        path += ".py"
    code = find_code(magics, " ".join(args.code))
    if not args.append and not _may_write(path, args.force):
        print("Operation cancelled.")
        return
    with open(path, "a" if args.append else "w", encoding="utf-8") as file:
        if args.append and file.tell():
            file.write("\n")
        file.write(code if code.endswith("\n") else code + "\n")
    verb = "appended to" if args.append else "written to"
    print(f"The following commands were {verb} file `{path}`:\n{code}")


# -- %load -------------------------------------------------------------------------------


@functools.cache
def _load_parser() -> argparse.ArgumentParser:
    parser = make_parser("%load")
    parser.add_argument("-r", dest="lines", help="only these lines: 5-10, 3,7, 20: (1-based)")
    parser.add_argument("-s", dest="symbols", help="only these functions and classes: f,Cls")
    parser.add_argument("-y", dest="yes", action="store_true", help="no question asked (there is none)")
    parser.add_argument("-n", dest="namespace", help="not supported")
    parser.add_argument("source", nargs="+")
    return parser


def select_lines(code: str, spec: str) -> str:
    """The lines of ``code`` that ``spec`` names: ``N``, ``N-M`` (inclusive), ``N:M``, ``N:``, ``:M``."""
    lines = code.splitlines(True)
    chosen: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            if "-" in part:
                first, last = (int(x) for x in part.split("-", 1))
                chosen += lines[first - 1 : last]
            elif ":" in part:
                first_s, last_s = part.split(":", 1)
                chosen += lines[int(first_s or 1) - 1 : int(last_s) - 1 if last_s else None]
            else:
                chosen += lines[int(part) - 1 : int(part)]
        except ValueError:
            raise UsageError(f"%load -r: not a line range: {part!r}") from None
    return "".join(chosen)


def select_symbols(code: str, names: str) -> str:
    """The source of the top-level functions and classes of ``code`` named in ``names``."""
    import ast

    wanted = {n.strip() for n in names.split(",") if n.strip()}
    tree = ast.parse(code)
    lines = code.splitlines(True)
    blocks: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in wanted:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            blocks[node.name] = "".join(lines[first - 1 : node.end_lineno])
    missing = wanted - set(blocks)
    if missing:
        raise UsageError(f"%load -s: not found: {', '.join(sorted(missing))}")
    return "\n".join(blocks.values())


@line_magic("load")
def load(magics: Magics, line: str) -> None:
    """``%load SOURCE``: replace this cell with ``# %load SOURCE`` and the code SOURCE names (a
    file, a URL, history ranges, a string variable, an object's source); run it to run the code.
    ``-r LINES`` keeps only those lines, ``-s NAMES`` those functions and classes."""
    args = parse_line(_load_parser(), line)
    if args.namespace is not None:
        raise UsageError("%load -n is not supported by fastkernel")
    code = find_code(magics, " ".join(args.source), search_ns=True)
    if args.lines:
        code = select_lines(code, args.lines)
    if args.symbols:
        code = select_symbols(code, args.symbols)
    magics.interpreter.shell.set_next_input(f"# %load {line.strip()}\n{code}", replace=True)
