"""Input history in SQLite, answering ``history_request`` (tail, range, search).

One session per kernel start. Inputs (and, with ``store_output``, the ``text/plain`` of each
result) are kept in memory when a cell ends and written in one short transaction when the
kernel is idle, at most every ``flush_interval`` seconds and at shutdown, all on the main
thread: no writer thread. A query first writes what is pending, so the running session's cells
are always visible. The kernel is idle when the shell requests waiting have been handled
(``KernelServer.on_idle``).

The schema is IPython's (``sessions``, ``history``, ``output_history``), so IPython's
``HistoryAccessor`` can read the file. It uses WAL journal mode, ``synchronous=NORMAL`` and a
busy timeout, so several kernels can share one file. ``sqlite3`` is imported when the database
is first needed (the first write or query), not at kernel start. The SQL is in
:mod:`fastkernel.historydb`; this module decides when it runs.

A file that cannot be used (corrupt, unreadable, locked past the busy timeout) never stops the kernel:
the problem is logged once and the store goes on in an in-memory database, with the running
session's cells copied over.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastkernel import historydb
from fastkernel.historydb import MEMORY, Row

Result = TypeVar("Result")

log = logging.getLogger("fastkernel")

BUSY_TIMEOUT_S = 1.0  # how long a write waits for another kernel's transaction
INLINE_FLUSH_ROWS = 1000  # pending rows written at once when no idle hook ever runs


def jupyter_data_dir() -> Path:
    """Jupyter's data directory, as jupyter_core computes it, without importing it (37 ms)."""
    if os.environ.get("JUPYTER_DATA_DIR"):
        return Path(os.environ["JUPYTER_DATA_DIR"])
    home = Path(os.path.expanduser("~"))
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        if appdata:
            return Path(appdata) / "jupyter"
        config = os.environ.get("JUPYTER_CONFIG_DIR") or str(home / ".jupyter")
        return Path(config) / "data"
    xdg = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(xdg) / "jupyter"


def default_history_file() -> Path:
    return jupyter_data_dir() / "fastkernel" / "history.sqlite"


def _locked(method: Callable[..., Result]) -> Callable[..., Result]:
    """``method`` holding the store's lock (the main shell and subshells share the store)."""

    @functools.wraps(method)
    def locked(self: HistoryStore, *args: Any, **kwargs: Any) -> Result:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class HistoryStore:
    """The kernel's input history. ``path`` None disables it: nothing is stored, queries are empty.

    Parameters
    ----------
    path
        SQLite file (its directory is created), ``":memory:"`` for this session only, or None.
    store_output
        Also keep the ``text/plain`` of each cell's result (``output_history``).
    max_sessions, max_rows
        When the file is first opened, the oldest sessions are deleted until at most
        ``max_sessions`` sessions and ``max_rows`` inputs are left (0: no bound); the running
        session is never deleted.
    flush_interval
        Least seconds between two writes to the file.
    busy_timeout
        Seconds a write waits for another process's transaction before giving up on the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = MEMORY,
        *,
        store_output: bool = False,
        max_sessions: int = 0,
        max_rows: int = 0,
        flush_interval: float = 0.05,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = None if path is None else str(path)
        self.store_output = store_output
        self.max_sessions = max_sessions
        self.max_rows = max_rows
        self.flush_interval = flush_interval
        self.busy_timeout = busy_timeout
        self.started = time.time()  # the session's start (datetime is imported when written)
        self.conn: Any = None  # a sqlite3.Connection once opened
        self.fell_back = False  # the file could not be used: history is in memory
        self._session = 0  # known once the database is open
        self._pending: dict[int, tuple[str, str]] = {}  # line -> (source, source_raw), not yet written
        self._outputs: dict[int, str] = {}  # line -> text/plain of its result, not yet written
        self._cells: dict[int, tuple[str, str]] = {}  # this session's cells, for a fall back to memory
        self._results: dict[int, str] = {}  # this session's results, likewise
        self._next_flush = 0.0
        self._warned = False
        self.lock = threading.RLock()  # the main shell and subshells record and query at once

    @property
    def enabled(self) -> bool:
        return self.path is not None

    # -- recording ------------------------------------------------------------

    @_locked
    def record(self, line: int, source_raw: str, source: str | None = None) -> None:
        """Cell ``line`` of this session ran ``source_raw`` (``source``: after transformation)."""
        if self.path is None:
            return
        cell = (source_raw if source is None else source, source_raw)
        self._pending[line] = cell
        self._cells[line] = cell
        if len(self._pending) >= INLINE_FLUSH_ROWS:
            self.flush()

    @_locked
    def record_output(self, line: int | None, data: dict[str, Any]) -> None:
        """The result of cell ``line`` (its MIME bundle); kept only with ``store_output``."""
        if self.path is None or not self.store_output or line is None:
            return
        text = data.get("text/plain")
        if isinstance(text, str):
            self._outputs[line] = text
            self._results[line] = text

    # -- writing --------------------------------------------------------------

    @_locked
    def on_idle(self) -> float | None:
        """The kernel is idle: write what is pending when due. Seconds until the next call, or None."""
        if not self._pending and not self._outputs:
            return None
        wait = self._next_flush - time.monotonic()
        if wait > 0:
            return wait
        self.flush()
        return None

    @_locked
    def flush_if_due(self) -> None:
        """A cell is about to run: write what is pending if the last write was long enough ago.

        Cells queued together run without an idle moment between them; this keeps their
        inputs from waiting in memory until the last of them (a long one, say) has finished.
        """
        if (self._pending or self._outputs) and time.monotonic() >= self._next_flush:
            self.flush()

    @_locked
    def flush(self) -> None:
        """Write what is pending now (to memory instead if the file fails). Never raises."""
        if not self._pending and not self._outputs:
            return
        try:
            if self._ensure_open():
                try:
                    historydb.write(self.conn, self._session, self._pending, self._outputs)
                except Exception as err:
                    self._fall_back(err)  # the memory database gets every cell of this session
        except Exception:  # not even memory works: keep the kernel serving
            log.exception("history: could not store inputs")
        self._pending.clear()
        self._outputs.clear()
        self._next_flush = time.monotonic() + self.flush_interval

    @_locked
    def close(self) -> None:
        """Write what is pending, note the session's end, close the database. Never raises."""
        self.flush()
        if self.conn is None:
            return
        try:
            historydb.end_session(self.conn, self._session, len(self._cells))
        except Exception as err:  # the kernel is exiting: a missing end time is not worth more
            log.debug("history: could not note the end of the session: %s", err)
        finally:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    # -- opening ----------------------------------------------------------------

    @property
    def session(self) -> int:
        """This kernel's session number (opens the database the first time)."""
        if not self._session:
            self._ensure_open()
        return self._session

    def _ensure_open(self) -> bool:
        """Open the database once; False when history is disabled."""
        if self.conn is not None:
            return True
        if self.path is None:
            return False
        if self.path == MEMORY:
            self._open(MEMORY)
            return True
        try:
            self._open(self.path)
        except Exception as err:
            self._fall_back(err)
            return True
        try:
            self._prune()
        except Exception as err:  # housekeeping: the next kernel start tries again
            log.debug("history: could not prune %s: %s", self.path, err)
        return True

    def _open(self, path: str, session: int | None = None) -> None:
        """Connect to ``path`` and start the session (number ``session``, or the next free one)."""
        self.conn = historydb.connect(path, self.busy_timeout)
        self._session = historydb.start_session(self.conn, self.started, session)

    def _fall_back(self, err: Exception) -> None:
        """Go on in memory, keeping this session's number and cells."""
        if not self._warned:
            self._warned = True
            log.warning(
                "history file %s cannot be used (%s: %s); history is kept in memory for this session",
                self.path,
                type(err).__name__,
                err,
            )
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None
        self.fell_back = True
        self.path = MEMORY
        self._open(MEMORY, self._session or None)
        historydb.write(self.conn, self._session, self._cells, self._results)

    def _prune(self) -> None:
        """Delete the oldest sessions beyond ``max_sessions`` and ``max_rows``, never this one."""
        if not self.max_sessions and not self.max_rows:
            return
        cutoff = historydb.prune(self.conn, self._session, self.max_sessions, self.max_rows)
        if cutoff:
            log.debug("history: deleted sessions up to %d from %s", cutoff, self.path)

    # -- queries ----------------------------------------------------------------

    def _query(self, where: str, params: tuple[Any, ...], order: str, *, unique: bool = False) -> list[Row]:
        """Rows of ``history`` (with their output) after writing what is pending."""
        self.flush()
        self._ensure_open()
        try:
            return historydb.select(self.conn, where, params, order, unique=unique)
        except Exception as err:  # a damaged file: answer from memory (this session) from now on
            self._fall_back(err)
            return historydb.select(self.conn, where, params, order, unique=unique)

    @_locked
    def tail(self, n: int, raw: bool = True, output: bool = False) -> list[list[Any]]:
        """The last ``n`` cells over all sessions, oldest first."""
        if self.path is None or n <= 0:
            return []
        rows = self._query("", (n,), "ORDER BY h.session DESC, h.line DESC LIMIT ?")
        return _shape(rows[::-1], raw, output)

    @_locked
    def range(
        self,
        session: int = 0,
        start: int = 1,
        stop: int | None = None,
        raw: bool = True,
        output: bool = False,
    ) -> list[list[Any]]:
        """Cells ``start <= line < stop`` of ``session`` (0: this one, -1: the one before, ...).

        ``stop`` None or 0 means to the end of the session; a negative ``start`` or ``stop``
        counts back from its end.
        """
        if self.path is None:
            return []
        if session <= 0:
            session += self.session
        if start < 0 or (stop is not None and stop < 0):
            self.flush()
            end = historydb.last_line(self.conn, session) + 1
            start = max(start + end, 0) if start < 0 else start
            stop = max(stop + end, 0) if stop is not None and stop < 0 else stop
            if stop == 0:
                return []
        params: tuple[Any, ...]
        if stop:
            where, params = "WHERE h.session = ? AND h.line >= ? AND h.line < ?", (session, start, stop)
        else:
            where, params = "WHERE h.session = ? AND h.line >= ?", (session, start)
        return _shape(self._query(where, params, "ORDER BY h.line"), raw, output)

    @_locked
    def search(
        self,
        pattern: str = "*",
        raw: bool = True,
        output: bool = False,
        n: int | None = None,
        unique: bool = False,
    ) -> list[list[Any]]:
        """Cells whose input matches the glob ``pattern`` (``*``, ``?``, ``[...]``; case-sensitive).

        ``unique``: each input once, at its latest run. ``n``: only the last ``n`` matches.
        """
        if self.path is None or (n is not None and n <= 0):
            return []
        if n is None:
            rows = self._query("WHERE h.source_raw GLOB ?", (pattern,), "ORDER BY 1, 2", unique=unique)
        else:
            rows = self._query(
                "WHERE h.source_raw GLOB ?", (pattern, n), "ORDER BY 1 DESC, 2 DESC LIMIT ?", unique=unique
            )[::-1]
        return _shape(rows, raw, output)


def _shape(rows: list[Row], raw: bool, output: bool) -> list[list[Any]]:
    """Reply items: ``[session, line, input]``, or ``[session, line, [input, output]]``."""
    column = 3 if raw else 2
    if output:
        return [[row[0], row[1], [row[column], row[4]]] for row in rows]
    return [[row[0], row[1], row[column]] for row in rows]
