"""An exception, its chain and its group members as the ``traceback`` list of an ``error`` message.

One string per section, as ipykernel sends it (frontends join them with newlines): a header,
one per frame, the exception line, the chaining sentence, one per group member. The modes
(``%xmode``, docs/interpreter.md):

- Minimal: the exception line only (and its notes; a group's members one line each);
- Plain: Python's own layout, coloured;
- Context: IPython's layout: a header, a few numbered lines around each frame's failing
  line with an arrow;
- Verbose: Context and the values of each frame's variables;
- Docs: Context and the first paragraph of each function's docstring.

Frames repeated by a recursion are shown once with a count; library frames between user
frames can be folded into one line (``hide_libraries``); a KeyboardInterrupt shows only where
the cell was interrupted.
"""

from __future__ import annotations

import builtins
import functools
import linecache
import os
from collections.abc import Mapping
from dataclasses import dataclass

from fastkernel.interpreter import tbframes
from fastkernel.interpreter.tbframes import Palette
from fastkernel.interpreter.tracebacks import Frame, TracebackStyle, user_frames

CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"
MAX_GROUP_WIDTH, MAX_GROUP_DEPTH = 15, 10
MAX_PERIOD = 4  # recursions through up to this many functions are folded
HEADER_WIDTH = 75
_GROUP = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11+


@dataclass
class Repeat:
    """``count`` more repetitions of the ``period`` frames above (a recursion)."""

    period: int
    count: int


@dataclass
class Hidden:
    """``count`` library frames folded away."""

    count: int


Entry = Frame | Repeat | Hidden


def render(exc: BaseException, labels: Mapping[str, str], style: TracebackStyle) -> list[str]:
    """The sections of ``exc``'s traceback in ``style``."""
    renderer = _Renderer(labels, style)
    if _is_kernel_exception(exc) and type(exc).__name__ == "UsageError":
        return renderer.exception_line(exc, depth=0)  # a misused magic: its message says it all
    return renderer.chain(exc, depth=0)


def _is_kernel_exception(exc: BaseException) -> bool:
    """Raised by the kernel's own code for the user to read (a magic's UsageError)."""
    return str(getattr(type(exc), "__module__", "")).startswith("fastkernel.")


def exception_name(exc: BaseException) -> str:
    """The bare class name, as IPython shows it (and as ``ename`` has it)."""
    return type(exc).__name__


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(os.path.join(d, "") for d in sorted(dirs))


def is_library_file(filename: str) -> bool:
    """Installed packages and the standard library (what ``hide_libraries`` folds)."""
    parts = filename.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or filename.startswith(_library_dirs())


def fold_recursion(frames: list[Frame]) -> list[Entry]:
    """Runs of the same ``period`` frames repeated 3 times or more, kept once with a count."""
    keys = [(f.filename, f.lineno, f.name) for f in frames]
    out: list[Entry] = []
    i = 0
    while i < len(frames):
        best: tuple[int, int] | None = None  # (period, repetitions)
        for period in range(1, MAX_PERIOD + 1):
            block = keys[i : i + period]
            if len(block) < period:
                break
            reps = 1
            while keys[i + reps * period : i + (reps + 1) * period] == block:
                reps += 1
            if reps >= 3 and (best is None or reps * period > best[0] * best[1]):
                best = (period, reps)
        if best is None:
            out.append(frames[i])
            i += 1
            continue
        period, reps = best
        out.extend(frames[i : i + period])
        out.append(Repeat(period, reps - 1))
        i += period * reps
    return out


def hide_libraries(entries: list[Entry]) -> list[Entry]:
    """Library frames followed by a user frame folded into one :class:`Hidden` (the last run,
    where the error was raised, stays)."""
    out: list[Entry] = []
    run: list[Entry] = []
    for entry in entries:
        if isinstance(entry, Frame) and is_library_file(entry.filename):
            run.append(entry)
            continue
        if isinstance(entry, Frame) and run:
            out.append(Hidden(sum(1 for e in run if isinstance(e, Frame))))
            run = []
        out.extend(run)
        run = []
        out.append(entry)
    return out + run


class _Renderer:
    def __init__(self, labels: Mapping[str, str], style: TracebackStyle) -> None:
        self.labels = labels
        self.mode = style.mode
        self.hide = style.hide_libraries
        self.paint = Palette(style.use_colors())

    # -- exceptions ------------------------------------------------------------------

    def chain(self, exc: BaseException, depth: int) -> list[str]:
        """``exc`` and the exceptions it was raised from or while handling, oldest first."""
        if self.mode == "Minimal":
            return self.exception_line(exc, depth)
        links: list[tuple[BaseException, str | None]] = []  # (exception, how the next older one led to it)
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if current.__cause__ is not None:
                links.append((current, CAUSE))
                current = current.__cause__
            elif current.__context__ is not None and not current.__suppress_context__:
                links.append((current, CONTEXT))
                current = current.__context__
            else:
                links.append((current, None))
                current = None
        sections: list[str] = []
        for older, newer in zip(reversed(links), [*reversed(links)][1:] + [None], strict=True):
            sections += self.one(older[0], depth)
            if newer is not None and newer[1] is not None:
                sections.append(f"\n{newer[1]}\n")
        return sections

    def one(self, exc: BaseException, depth: int) -> list[str]:
        """One exception: header, frames, SyntaxError detail, exception line, group members."""
        frames = user_frames(exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt) and frames:
            cells = [f for f in frames if f.filename in self.labels]
            frames = [(cells or frames)[-1]]  # only where the cell was interrupted
        entries = fold_recursion(frames)
        if self.hide:
            entries = hide_libraries(entries)
        sections: list[str] = []
        if entries:
            sections.append(self.header(exc))
        sections += [self.entry(e) for e in entries]
        if isinstance(exc, SyntaxError):
            sections += self.syntax_detail(exc)  # one string per line, as Python's own format
        sections += self.exception_line(exc, depth)
        return sections

    def header(self, exc: BaseException) -> str:
        if self.mode == "Plain":
            return "Traceback (most recent call last):"
        dashes = self.paint("header", "-" * HEADER_WIDTH)
        name = exception_name(exc)
        padding = " " * max(1, 42 - len(name))
        return f"{dashes}\n{self.paint('ename', name)}{padding}Traceback (most recent call last)"

    def exception_line(self, exc: BaseException, depth: int) -> list[str]:
        """``Name: message`` and the notes; then a group's members."""
        name = exception_name(exc)
        message = exc.msg if isinstance(exc, SyntaxError) and isinstance(exc.msg, str) else _text(exc)
        # "Name: message"; with no message Python writes the bare name, IPython a colon after it
        line = self.paint("ename", name) + (f": {message}" if message or self.mode != "Plain" else "")
        lines = [line, *_notes(exc)]
        sections = ["\n".join(lines)]
        members = getattr(exc, "exceptions", None)
        if _GROUP is not None and isinstance(exc, _GROUP) and isinstance(members, tuple):
            sections += self.group_members(members, depth)
        return sections

    def group_members(self, members: tuple[BaseException, ...], depth: int) -> list[str]:
        if depth + 1 >= MAX_GROUP_DEPTH:
            return [self.paint("header", f"+ ... (exception groups nested deeper than {MAX_GROUP_DEPTH})")]
        sections = []
        for number, member in enumerate(members[:MAX_GROUP_WIDTH], start=1):
            border = self.paint("header", f"+---------------- {number} ----------------")
            bar = self.paint("header", "|")
            body = "\n".join(self.chain(member, depth + 1)).split("\n")
            sections.append("\n".join([border, *(f"{bar} {line}".rstrip() for line in body)]))
        if len(members) > MAX_GROUP_WIDTH:
            sections.append(
                self.paint("header", f"+ ... and {len(members) - MAX_GROUP_WIDTH} more exceptions")
            )
        if self.mode != "Minimal":
            sections.append(self.paint("header", "+------------------------------------"))
        return sections

    def syntax_detail(self, exc: SyntaxError) -> list[str]:
        """``  Cell In[n], line k`` (or the file), the offending line and a caret under the token."""
        filename = exc.filename or "<string>"
        label = self.labels.get(filename)
        place = f"{label}, line {exc.lineno}" if label else f'File "{filename}", line {exc.lineno}'
        lines = [f"  {self.paint('location', place)}"]
        source = exc.text
        if not source and isinstance(exc.lineno, int):  # errors found after parsing carry no text
            source = linecache.getline(filename, exc.lineno)
        if source:
            full = source.rstrip("\r\n")
            text = full.lstrip(" \t\f")
            lines.append(f"    {text}")
            if isinstance(exc.offset, int) and exc.offset >= 1:
                start = max(0, exc.offset - 1 - (len(full) - len(text)))
                end = start + 1
                same_line = exc.end_lineno in (None, exc.lineno)
                if same_line and isinstance(exc.end_offset, int) and exc.end_offset > exc.offset:
                    end = start + (exc.end_offset - exc.offset)
                lines.append("    " + " " * start + self.paint("caret", "^" * (end - start)))
        return lines

    # -- frames ----------------------------------------------------------------------

    def entry(self, entry: Entry) -> str:
        indent = "  " if self.mode == "Plain" else ""
        if isinstance(entry, Repeat):
            what = "" if entry.period == 1 else f" the {entry.period} frames above"
            text = f"[...{what} repeated {entry.count} more times]"
            return indent + self.paint("header", text) + ("" if self.mode == "Plain" else "\n")
        if isinstance(entry, Hidden):
            plural = "s" if entry.count != 1 else ""
            text = f"[... {entry.count} library frame{plural} hidden]"
            return indent + self.paint("header", text) + ("" if self.mode == "Plain" else "\n")
        if self.mode == "Plain":
            return self.plain_frame(entry)
        return self.context_frame(entry)

    def plain_frame(self, frame: Frame) -> str:
        lines = ["  " + tbframes.location(frame, self.labels, self.paint, python_style=True)]
        source = tbframes.source_lines(frame)
        if frame.lineno is not None and 1 <= frame.lineno <= len(source):
            text = source[frame.lineno - 1]
            stripped = text.lstrip()
            lines.append(f"    {stripped}")
            span = tbframes.char_columns(frame, text)
            if span is not None:
                shift = len(text) - len(stripped)
                carets = tbframes.caret_line(stripped, (span[0] - shift, span[1] - shift), self.paint)
                lines.append(f"    {carets}")
        return "\n".join(lines)

    def context_frame(self, frame: Frame) -> str:
        lines = [tbframes.location(frame, self.labels, self.paint, python_style=False)]
        if self.mode == "Docs":
            doc = tbframes.docstring(frame)
            if doc is not None:
                lines += [self.paint("doc", f"    {line}") for line in doc.splitlines()]
        source = tbframes.source_lines(frame)
        lines += tbframes.context(frame, source, self.paint)
        if self.mode == "Verbose":
            lines += tbframes.variables(frame, source, self.paint, indent=" " * 8)
        return "\n".join(lines) + "\n"


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _notes(exc: BaseException) -> list[str]:
    try:
        notes = getattr(exc, "__notes__", None)
    except Exception as err:  # a property that raises
        return [f"<__notes__ raised {type(err).__name__}>"]
    if notes is None:
        return []
    if not isinstance(notes, (list, tuple)):
        return [f"<__notes__ is not a list: {tbframes.bounded_repr(notes)}>"]
    return [note if isinstance(note, str) else tbframes.bounded_repr(note) for note in notes]
