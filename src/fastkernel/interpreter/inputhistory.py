"""The input history as magics see it (%history, %save, %load, %recall, %rerun), and its ranges.

The interpreter knows no kernel: the core passes its history store in (``Interpreter(...,
input_history=store)``), typed by :class:`InputHistory`, which ``fastkernel.history.HistoryStore``
satisfies. Without one (an interpreter on its own, in tests), :class:`SessionInputs` answers
from ``In``: this session only.

Rows are as in ``history_reply``: ``[session, line, input]``, or ``[session, line, [input,
output]]`` when the output is asked for.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fastkernel.interpreter.outcache import OutputCache

Row = list[Any]

# IPython's range syntax: [SESSION/]START[-END|:END], SESSION absolute (3) or relative (~2).
_RANGE = re.compile(
    r"""^(?:(?P<startsess>~?\d+)/)?(?P<start>\d+)?
    (?:(?P<sep>[-:])(?:(?P<endsess>~?\d+)/)?(?P<end>\d+))?$""",
    re.VERBOSE,
)


class InputHistory(Protocol):
    """What magics need from the kernel's input history (``fastkernel.history.HistoryStore``)."""

    @property
    def session(self) -> int:
        """This kernel's session number."""
        ...

    def range(
        self,
        session: int = 0,
        start: int = 1,
        stop: int | None = None,
        raw: bool = True,
        output: bool = False,
    ) -> list[Row]:
        """Cells ``start <= line < stop`` of ``session`` (0: this one, -1: the one before)."""
        ...

    def tail(self, n: int, raw: bool = True, output: bool = False) -> list[Row]:
        """The last ``n`` cells over all sessions, oldest first."""
        ...

    def search(
        self,
        pattern: str = "*",
        raw: bool = True,
        output: bool = False,
        n: int | None = None,
        unique: bool = False,
    ) -> list[Row]:
        """Cells whose input matches the glob ``pattern`` (the last ``n``), oldest first."""
        ...


class SessionInputs:
    """An :class:`InputHistory` over ``In`` and ``Out``: this session only, numbered 1."""

    session = 1

    def __init__(self, cache: OutputCache) -> None:
        self.cache = cache

    def _rows(self, lines: list[int], output: bool) -> list[Row]:
        inputs, outputs = self.cache.inputs, self.cache.outputs
        if output:
            return [[1, n, [inputs[n], output_text(outputs[n]) if n in outputs else None]] for n in lines]
        return [[1, n, inputs[n]] for n in lines]

    def range(
        self,
        session: int = 0,
        start: int = 1,
        stop: int | None = None,
        raw: bool = True,
        output: bool = False,
    ) -> list[Row]:
        if session not in (0, 1):
            return []
        end = len(self.cache.inputs)
        stop = end if not stop else min(stop, end)
        return self._rows(list(range(max(start, 1), stop)), output)

    def tail(self, n: int, raw: bool = True, output: bool = False) -> list[Row]:
        lines = list(range(1, len(self.cache.inputs)))
        return self._rows(lines[-n:] if n > 0 else [], output)

    def search(
        self,
        pattern: str = "*",
        raw: bool = True,
        output: bool = False,
        n: int | None = None,
        unique: bool = False,
    ) -> list[Row]:
        inputs = self.cache.inputs
        lines = [i for i in range(1, len(inputs)) if fnmatch.fnmatchcase(inputs[i], pattern)]
        if unique:
            latest = {inputs[i]: i for i in lines}
            lines = sorted(latest.values())
        return self._rows(lines[-n:] if n is not None else lines, output)


def output_text(value: Any) -> str:
    """The ``text/plain`` of a result, as ``execute_result`` showed it."""
    from fastkernel.interpreter.formatting import format_object

    return str(format_object(value)[0].get("text/plain", ""))


def _session(text: str | None) -> int:
    """``~2`` (two sessions back) as -2, ``3`` as 3, nothing as 0 (this session)."""
    if not text:
        return 0
    return -int(text[1:]) if text.startswith("~") else int(text)


def parse_ranges(text: str) -> list[tuple[int, int, int | None]] | None:
    """``(session, start, stop)`` triples for a history range string, or None if it is not one.

    Space-separated parts, each ``N`` (cell N), ``N-M`` (N to M), ``N:M`` (N up to, not
    including, M), ``~S/`` (all of the session S back), ``S/N-T/M`` (across sessions). A
    session is absolute (``3/``) or counted back from this one (``~1/``); ``stop`` None means
    to the end of that session.
    """
    if not text.strip():
        return None
    triples: list[tuple[int, int, int | None]] = []
    for part in text.split():
        match = _RANGE.match(part)
        if match is None or not (match.group("start") or match.group("startsess")):
            return None
        first, last = _session(match.group("startsess")), match.group("endsess")
        if not match.group("start"):  # a whole session
            triples.append((first, 1, None))
            continue
        start = int(match.group("start"))
        end = int(match.group("end")) if match.group("end") else start
        stop = end + 1 if match.group("sep") != ":" else end
        if last is None or _session(last) == first:
            triples.append((first, start, stop))
            continue
        until = _session(last)
        triples.append((first, start, None))
        triples += [(s, 1, None) for s in range(first + 1, until)]
        triples.append((until, 1, stop))
    return triples


def rows_for(history: InputHistory, text: str, output: bool = False) -> list[Row] | None:
    """The rows a range string names, in the order given; None if ``text`` is not ranges."""
    triples = parse_ranges(text)
    if triples is None:
        return None
    rows: list[Row] = []
    for session, start, stop in triples:
        rows += history.range(session, start, stop, True, output)
    return rows
