"""The input history: %history (%hist), %recall and %rerun.

They read the kernel's history store through ``interpreter.input_history`` (see
:mod:`fastkernel.interpreter.inputhistory`): every session in the history file, not only this
one. Ranges are IPython's: ``4``, ``4-6``, ``4:7``, ``~1/`` (the whole previous session),
``~2/3-5``, ``3/1-4/2``; several may be given, separated by spaces.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NoReturn

from fastkernel.interpreter.inputhistory import Row, output_text, rows_for
from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, line_magic

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable


def make_parser(prog: str) -> argparse.ArgumentParser:
    """argparse for a magic (imported on first use): a bad argument is a UsageError, never an exit."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{self.format_usage().strip()}\n{self.prog}: {message}")

    return Parser(prog=prog, add_help=False, allow_abbrev=False)


def parse_line(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace:
    """``line`` split as a shell would, then parsed by ``parser``."""
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"{parser.prog}: cannot parse the arguments: {err}") from None
    return parser.parse_args(words)


def current_cell(magics: Magics) -> tuple[int, int | None]:
    """(session, line) of the running cell; line None when the cell stores no history."""
    return magics.interpreter.input_history.session, magics.interpreter.history.current


def without_current(magics: Magics, rows: Iterable[Row]) -> list[Row]:
    """``rows`` less the running cell (a %rerun must not run itself)."""
    here = current_cell(magics)
    return [row for row in rows if (row[0], row[1]) != here]


def ranges(magics: Magics, text: str, output: bool = False) -> list[Row]:
    """The rows of a range string (a UsageError if it is not one)."""
    rows = rows_for(magics.interpreter.input_history, text, output)
    if rows is None:
        raise UsageError(f"not a history range: {text!r} (examples: 4, 4-6, ~1/, ~2/3-5)")
    return rows


def source_of(rows: Iterable[Row]) -> str:
    """The inputs of ``rows`` as one piece of code, one cell after the other."""
    return "\n".join(str(row[2][0] if isinstance(row[2], list) else row[2]).rstrip("\n") for row in rows)


# -- %history ---------------------------------------------------------------------


@functools.cache
def _history_parser() -> argparse.ArgumentParser:
    parser = make_parser("%history")
    parser.add_argument("-n", dest="numbers", action="store_true", help="print line numbers")
    parser.add_argument("-o", dest="output", action="store_true", help="print the outputs too")
    parser.add_argument("-p", dest="prompts", action="store_true", help="print >>> prompts")
    parser.add_argument("-t", "-r", dest="raw", action="store_true", help="raw or translated: the same here")
    parser.add_argument("-f", dest="file", help="write to FILE instead of printing")
    parser.add_argument("-g", dest="pattern", nargs="*", help="search all sessions (glob, *x* implied)")
    parser.add_argument("-l", dest="limit", nargs="?", type=int, const=10, help="the last N cells")
    parser.add_argument("-u", dest="unique", action="store_true", help="with -g: each input once")
    parser.add_argument("range", nargs="*")
    return parser


def _history_rows(magics: Magics, args: argparse.Namespace) -> list[Row]:
    history = magics.interpreter.input_history
    if args.pattern is not None:
        pattern = "*" + " ".join(args.pattern) + "*"
        rows = history.search(pattern, True, args.output, None, args.unique)
        rows = without_current(magics, rows)
        return rows[-args.limit :] if args.limit else rows
    if args.limit is not None:
        return without_current(magics, history.tail(args.limit + 1, True, args.output))[-args.limit :]
    if args.range:
        return ranges(magics, " ".join(args.range), args.output)
    return history.range(0, 1, None, True, args.output)


def _with_outputs(magics: Magics, rows: list[Row]) -> list[Row]:
    """Outputs of this session's cells from ``Out`` where the store kept none."""
    session, outputs = magics.interpreter.input_history.session, magics.interpreter.history.outputs
    for row in rows:
        if row[0] == session and row[2][1] is None and row[1] in outputs:
            row[2][1] = output_text(outputs[row[1]])
    return rows


def format_rows(rows: list[Row], session: int, numbers: bool, prompts: bool = False) -> str:
    """Rows as %history prints them (``-n``: numbered, ``S/N`` for other sessions)."""
    out: list[str] = []
    for row_session, line, item in rows:
        source, output = item if isinstance(item, list) else (item, None)
        source = str(source).expandtabs(4).rstrip()
        multiline = "\n" in source
        text = ""
        if numbers:
            number = str(line) if row_session == session else f"{row_session}/{line}"
            text = number.rjust(4) + (":\n" if multiline else ": ")
        if prompts:
            source = ">>> " + ("\n... ".join(source.splitlines()) + "\n..." if multiline else source)
        out.append(text + source)
        if output:
            out.append(str(output))
    return "".join(line + "\n" for line in out)


@line_magic("history")
@line_magic("hist")
def history(magics: Magics, line: str) -> None:
    """Print the input history: this session's cells, or ranges (``4-6``, ``~1/``), ``-l N`` the
    last N, ``-g PATTERN`` a search of every session; ``-n`` numbers, ``-o`` outputs, ``-p``
    prompts, ``-f FILE`` writes to a file, ``-u`` one of each input with ``-g``."""
    args = parse_line(_history_parser(), line)
    rows = _history_rows(magics, args)
    if args.output:
        rows = _with_outputs(magics, rows)
    numbers = args.numbers or (args.pattern is not None and not args.file)
    text = format_rows(rows, magics.interpreter.input_history.session, numbers, args.prompts)
    if args.file is None:
        print(text, end="")
        return
    import os

    with open(os.path.expanduser(args.file), "w", encoding="utf-8") as file:
        file.write(text)


# -- %recall and %rerun -------------------------------------------------------------


@line_magic("recall")
@line_magic("rep")
def recall(magics: Magics, line: str) -> None:
    """Put code in the next input cell: the last result (no argument), history ranges, the value
    of an expression, else the newest input that contains the text."""
    text = line.strip()
    if not text:
        value = magics.interpreter.namespace.get("_", "")
        code = str(value)
    elif (rows := rows_for(magics.interpreter.input_history, text)) is not None:
        code = source_of(rows)
    else:
        code = _recall_expression(magics, text)
    magics.interpreter.shell.set_next_input(code)


def _recall_expression(magics: Magics, text: str) -> str:
    try:
        return str(eval(text, *magics.user_namespaces()))
    except Exception:  # not an expression here: look for it in the history
        pass
    rows = without_current(magics, magics.interpreter.input_history.search(f"*{text}*"))
    if not rows:
        raise UsageError(f"%recall: {text!r} is neither an expression nor in the history")
    return source_of(rows[-1:])


@functools.cache
def _rerun_parser() -> argparse.ArgumentParser:
    parser = make_parser("%rerun")
    parser.add_argument("-l", dest="limit", type=int, help="the last N cells")
    parser.add_argument("-g", dest="pattern", help="the newest cell that contains PATTERN")
    parser.add_argument("range", nargs="*")
    return parser


@line_magic("rerun")
def rerun(magics: Magics, line: str) -> Any:
    """Run earlier cells again: the previous one (no argument), ranges, ``-l N`` the last N,
    ``-g PATTERN`` the newest that contains PATTERN. Returns the value of their last line."""
    args = parse_line(_rerun_parser(), line)
    history = magics.interpreter.input_history
    if args.pattern is not None:
        rows = without_current(magics, history.search(f"*{args.pattern}*"))
        rows = [row for row in rows if "rerun" not in str(row[2])][-1:]
    elif args.range:
        rows = without_current(magics, ranges(magics, " ".join(args.range)))
    else:
        limit = args.limit or 1
        rows = without_current(magics, history.tail(limit + 1))[-limit:]
    if not rows:
        raise UsageError("%rerun: no earlier cell to run")
    code = source_of(rows)
    print(f"=== Executing: ===\n{code}\n=== Output: ===")
    filename = magics.interpreter.sources.register(code, "Rerun")
    return magics.interpreter.run_code(code, filename)
