"""Traceback formatting: user frames only, cells shown as ``Cell In[n], line k``.

Frames are filtered on a :class:`traceback.TracebackException`, so chained exceptions
(``__cause__``, ``__context__``, exception groups) lose the kernel's frames too:

- every frame of fastkernel's own code, wherever it is in the stack;
- asyncio's frames that come *before* the first user frame (the event loop that ran a
  top-level ``await`` cell); asyncio frames called by user code are kept.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

# <cell-N>, or the hash-named file of a cell while the visual debugger is on (debugcells.py)
_CELL_FILE = re.compile(r'File "(<cell-[^">]+>|[^"]+\.py)", line (\d+)')
_CELL_NAME = re.compile(r"<cell-\d+>")
# src/fastkernel/: every module of the kernel, the interpreter's own modules included.
_KERNEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass
class CellError:
    """What a frontend needs to show an exception: bare class name, value, lines."""

    ename: str
    evalue: str
    traceback: list[str]


def is_kernel_file(filename: str) -> bool:
    """Whether ``filename`` is one of fastkernel's own source files."""
    return filename.startswith(_KERNEL_DIR)


def _is_machinery(filename: str) -> bool:
    """Kernel code or the asyncio loop that runs an ``await`` cell (never before a user frame)."""
    if is_kernel_file(filename):
        return True
    asyncio = sys.modules.get("asyncio")
    asyncio_file = getattr(asyncio, "__file__", None)
    return asyncio_file is not None and filename.startswith(os.path.dirname(asyncio_file) + os.sep)


def user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame that is user code (the kernel's and the asyncio loop's skipped)."""
    first = tb
    while first is not None and _is_machinery(first.tb_frame.f_code.co_filename):
        first = first.tb_next
    return first if first is not None else tb


def _user_frames(stack: traceback.StackSummary) -> traceback.StackSummary:
    frames = list(stack)
    start = 0
    while start < len(frames) and _is_machinery(frames[start].filename):
        start += 1
    return traceback.StackSummary.from_list([f for f in frames[start:] if not is_kernel_file(f.filename)])


def _strip_kernel_frames(root: traceback.TracebackException) -> None:
    pending = [root]
    seen: set[int] = set()
    while pending:
        te = pending.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        te.stack = _user_frames(te.stack)
        chained = [te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())]
        pending.extend(c for c in chained if c is not None)


def format_error(exc: BaseException, labels: Mapping[str, str]) -> CellError:
    """Format ``exc`` with kernel frames removed and cell files given their labels.

    A SyntaxError raised while compiling a cell has only kernel frames, so it is shown like
    the interpreter shows it: the cell label, the offending line and a caret.
    """
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    _strip_kernel_frames(te)
    lines = [relabel(chunk, labels).rstrip("\n") for chunk in te.format()]
    evalue = str(exc)
    if isinstance(exc, SyntaxError):
        evalue = _CELL_NAME.sub(lambda m: labels.get(m.group(0), m.group(0)), evalue)
    return CellError(type(exc).__name__, evalue, lines)


def relabel(text: str, labels: Mapping[str, str]) -> str:
    """Replace ``File "<cell-7>", line 3`` with ``Cell In[5], line 3`` for known cells."""

    def repl(match: re.Match[str]) -> str:
        label = labels.get(match.group(1))
        if label is None:
            return match.group(0)
        return f"{label}, line {match.group(2)}"

    return _CELL_FILE.sub(repl, text)
