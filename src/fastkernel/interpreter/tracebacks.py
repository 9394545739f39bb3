"""Traceback formatting: user frames only, cells shown as ``Cell In[n], line k``.

Frames are filtered on every exception of a chain (``__cause__``, ``__context__``, exception
groups), so none of them shows the kernel's frames:

- every frame of fastkernel's own code, wherever it is in the stack;
- asyncio's frames that come *before* the first user frame (the event loop that ran a
  top-level ``await`` cell); asyncio frames called by user code are kept.

How the remaining frames are shown (``%xmode``, colours, library frames) is a
:class:`TracebackStyle`; the rendering itself lives in :mod:`.tbrender` and :mod:`.tbframes`,
imported when the first error is shown, never at kernel start.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType, TracebackType

# <cell-N>, or the hash-named file of a cell while the visual debugger is on (debugcells.py)
_CELL_FILE = re.compile(r'File "(<cell-[^">]+>|[^"]+\.py)", line (\d+)')
_CELL_NAME = re.compile(r"<cell-\d+>")
# src/fastkernel/: every module of the kernel, the interpreter's own modules included.
_KERNEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

MODES = ("Minimal", "Plain", "Context", "Verbose", "Docs")
COLOR_CHOICES = ("auto", "on", "off")


@dataclass
class TracebackStyle:
    """How errors are shown: the ``%xmode`` mode, colours and library frames.

    ``colors`` "auto" means ANSI colours unless the ``NO_COLOR`` environment variable is set
    (read each time an error is shown, so ``%env NO_COLOR=1`` takes effect at once).
    """

    mode: str = "Context"
    colors: str = "auto"
    hide_libraries: bool = False

    def use_colors(self) -> bool:
        if self.colors == "auto":
            return not os.environ.get("NO_COLOR")
        return self.colors == "on"


def parse_mode(text: str) -> str:
    """The mode named by ``text`` (any case); ValueError naming the choices otherwise."""
    for mode in MODES:
        if mode.lower() == text.strip().lower():
            return mode
    raise ValueError(f"traceback mode must be one of {', '.join(MODES)}, not {text.strip()!r}")


@dataclass
class CellError:
    """What a frontend needs to show an exception: bare class name, value, lines."""

    ename: str
    evalue: str
    traceback: list[str]


@dataclass
class Frame:
    """One frame of a traceback: where it stopped (columns are characters) and its live frame."""

    filename: str
    name: str
    lineno: int | None
    end_lineno: int | None = None
    colno: int | None = None  # 0-based, in characters of the source line (None: unknown)
    end_colno: int | None = None
    frame: FrameType | None = field(default=None, repr=False)


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


def _position(tb: TracebackType) -> tuple[int | None, int | None, int | None, int | None]:
    """(lineno, end_lineno, colno, end_colno) of the instruction ``tb`` stopped at; byte columns."""
    positions = getattr(tb.tb_frame.f_code, "co_positions", None)  # Python 3.11+
    if tb.tb_lasti < 0 or positions is None:
        return tb.tb_lineno, None, None, None
    position = next(itertools.islice(positions(), tb.tb_lasti // 2, None), None)
    if position is None:
        return tb.tb_lineno, None, None, None
    lineno = position[0] if position[0] is not None else tb.tb_lineno
    return lineno, position[1], position[2], position[3]


def user_frames(tb: TracebackType | None) -> list[Frame]:
    """The frames of ``tb`` that are the user's: kernel frames and the leading asyncio loop removed.

    Columns stay byte offsets here; :mod:`.tbframes` turns them into characters when it reads
    the source line.
    """
    frames: list[Frame] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if not (is_kernel_file(code.co_filename) or (not frames and _is_machinery(code.co_filename))):
            lineno, end_lineno, colno, end_colno = _position(tb)
            frames.append(
                Frame(code.co_filename, code.co_name, lineno, end_lineno, colno, end_colno, tb.tb_frame)
            )
        tb = tb.tb_next
    return frames


def format_error(
    exc: BaseException, labels: Mapping[str, str], style: TracebackStyle | None = None
) -> CellError:
    """Format ``exc`` with kernel frames removed and cell files given their labels.

    A SyntaxError raised while compiling a cell has only kernel frames, so it is shown like
    the interpreter shows it: the cell label, the offending line and a caret. Should the
    renderer fail on some odd exception object, Python's own format is shown instead.
    """
    from fastkernel.interpreter import tbrender

    try:
        lines = tbrender.render(exc, labels, style or TracebackStyle())
    except Exception:  # never lose the user's error to a formatting bug: Python's format then
        lines = _python_format(exc, labels)
    evalue = _safe_str(exc)
    if isinstance(exc, SyntaxError):
        evalue = _CELL_NAME.sub(lambda m: labels.get(m.group(0), m.group(0)), evalue)
    return CellError(type(exc).__name__, evalue, lines)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _python_format(exc: BaseException, labels: Mapping[str, str]) -> list[str]:
    try:
        chunks = traceback.format_exception(type(exc), exc, user_traceback(exc.__traceback__))
    except Exception:  # Python's own format fails too: the exception line is still shown
        return [f"{type(exc).__name__}: {_safe_str(exc)}"]
    return [relabel(chunk, labels).rstrip("\n") for chunk in chunks]


def relabel(text: str, labels: Mapping[str, str]) -> str:
    """Replace ``File "<cell-7>", line 3`` with ``Cell In[5], line 3`` for known cells."""

    def repl(match: re.Match[str]) -> str:
        label = labels.get(match.group(1))
        if label is None:
            return match.group(0)
        return f"{label}, line {match.group(2)}"

    return _CELL_FILE.sub(repl, text)
