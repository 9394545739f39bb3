"""Traceback formatting: user frames only, cells shown as ``Cell In[n], line k``."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from types import TracebackType

_CELL_FILE = re.compile(r'File "(<cell-[^">]+>)", line (\d+)')


@dataclass
class CellError:
    """What a frontend needs to show an exception: bare class name, value, lines."""

    ename: str
    evalue: str
    traceback: list[str]


def trim(tb: TracebackType | None, internal_files: frozenset[str]) -> TracebackType | None:
    """Drop the leading frames that belong to the kernel itself."""
    while tb is not None and tb.tb_frame.f_code.co_filename in internal_files:
        tb = tb.tb_next
    return tb


def format_error(exc: BaseException, internal_files: frozenset[str], labels: dict[str, str]) -> CellError:
    """Format ``exc`` with kernel frames removed and cell files given their labels."""
    tb = trim(exc.__traceback__, internal_files)
    if isinstance(exc, SyntaxError):
        # The frames of a SyntaxError are the compiler's, never the user's.
        chunks = traceback.format_exception_only(type(exc), exc)
    else:
        chunks = traceback.format_exception(type(exc), exc, tb)
    lines = [_relabel(chunk, labels).rstrip("\n") for chunk in chunks]
    evalue = str(exc)
    if isinstance(exc, SyntaxError) and exc.filename in labels:
        evalue = evalue.replace(exc.filename, labels[exc.filename])
    return CellError(type(exc).__name__, evalue, lines)


def _relabel(chunk: str, labels: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        label = labels.get(match.group(1))
        if label is None:
            return match.group(0)
        return f"{label}, line {match.group(2)}"

    return _CELL_FILE.sub(repl, chunk)
