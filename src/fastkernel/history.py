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
is first needed (the first write or query), not at kernel start.

A file that cannot be used (corrupt, unreadable, locked past the busy timeout) never stops the kernel:
the problem is logged once and the store goes on in an in-memory database, with the running
session's cells copied over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("fastkernel")

MEMORY = ":memory:"
BUSY_TIMEOUT_S = 1.0  # how long a write waits for another kernel's transaction
INLINE_FLUSH_ROWS = 1000  # pending rows written at once when no idle hook ever runs
_LINE_FACTOR = 1 << 32  # session * _LINE_FACTOR + line orders cells across sessions

# (session, line, source, source_raw, output)
Row = tuple[int, int, str, str, "str | None"]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (session integer primary key autoincrement,
        start timestamp, end timestamp, num_cmds integer, remark text)""",
    """CREATE TABLE IF NOT EXISTS history (session integer, line integer,
        source text, source_raw text, PRIMARY KEY (session, line))""",
    """CREATE TABLE IF NOT EXISTS output_history (session integer, line integer,
        output text, PRIMARY KEY (session, line))""",
)


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

    @property
    def enabled(self) -> bool:
        return self.path is not None

    # -- recording ------------------------------------------------------------

    def record(self, line: int, source_raw: str, source: str | None = None) -> None:
        """Cell ``line`` of this session ran ``source_raw`` (``source``: after transformation)."""
        if self.path is None:
            return
        cell = (source_raw if source is None else source, source_raw)
        self._pending[line] = cell
        self._cells[line] = cell
        if len(self._pending) >= INLINE_FLUSH_ROWS:
            self.flush()

    def record_output(self, line: int | None, data: dict[str, Any]) -> None:
        """The result of cell ``line`` (its MIME bundle); kept only with ``store_output``."""
        if self.path is None or not self.store_output or line is None:
            return
        text = data.get("text/plain")
        if isinstance(text, str):
            self._outputs[line] = text
            self._results[line] = text

    # -- writing --------------------------------------------------------------

    def on_idle(self) -> float | None:
        """The kernel is idle: write what is pending when due. Seconds until the next call, or None."""
        if not self._pending and not self._outputs:
            return None
        wait = self._next_flush - time.monotonic()
        if wait > 0:
            return wait
        self.flush()
        return None

    def flush_if_due(self) -> None:
        """A cell is about to run: write what is pending if the last write was long enough ago.

        Cells queued together run without an idle moment between them; this keeps their
        inputs from waiting in memory until the last of them (a long one, say) has finished.
        """
        if (self._pending or self._outputs) and time.monotonic() >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        """Write what is pending now (to memory instead if the file fails). Never raises."""
        if not self._pending and not self._outputs:
            return
        try:
            if self._ensure_open():
                try:
                    self._write(self._pending, self._outputs)
                except Exception as err:
                    self._fall_back(err)  # the memory database gets every cell of this session
        except Exception:  # not even memory works: keep the kernel serving
            log.exception("history: could not store inputs")
        self._pending.clear()
        self._outputs.clear()
        self._next_flush = time.monotonic() + self.flush_interval

    def _write(self, cells: dict[int, tuple[str, str]], outputs: dict[int, str]) -> None:
        session = self._session
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)",
                [(session, line, source, raw) for line, (source, raw) in cells.items()],
            )
            if outputs:
                conn.executemany(
                    "INSERT OR REPLACE INTO output_history VALUES (?, ?, ?)",
                    [(session, line, text) for line, text in outputs.items()],
                )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """BEGIN IMMEDIATE (takes the write lock at once, waiting up to the busy timeout), COMMIT."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Write what is pending, note the session's end, close the database. Never raises."""
        self.flush()
        if self.conn is None:
            return
        try:
            with self._transaction() as conn:
                conn.execute(
                    "UPDATE sessions SET end = ?, num_cmds = ? WHERE session = ?",
                    (_timestamp(time.time()), len(self._cells), self._session),
                )
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
            self.conn = self._connect(MEMORY)
            self._start_session()
            return True
        try:
            self.conn = self._connect(self.path)
            self._start_session()
        except Exception as err:
            self._fall_back(err)
            return True
        try:
            self._prune()
        except Exception as err:  # housekeeping: the next kernel start tries again
            log.debug("history: could not prune %s: %s", self.path, err)
        return True

    def _connect(self, path: str) -> Any:
        import sqlite3

        if path != MEMORY:
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None)
        try:
            if path != MEMORY:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            for statement in SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _start_session(self, number: int | None = None) -> None:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (session, start, num_cmds, remark) VALUES (?, ?, 0, ?)",
                (number, _timestamp(self.started), f"fastkernel pid {os.getpid()}"),
            )
        self._session = int(cursor.lastrowid)

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
        self.conn = self._connect(MEMORY)
        self._start_session(self._session or None)
        self._write(self._cells, self._results)

    def _prune(self) -> None:
        """Delete the oldest sessions beyond ``max_sessions`` and ``max_rows``, never this one."""
        if not self.max_sessions and not self.max_rows:
            return
        conn = self.conn
        cutoff = 0  # sessions up to this one go
        if self.max_sessions:
            found = conn.execute(
                "SELECT session FROM sessions ORDER BY session DESC LIMIT 1 OFFSET ?", (self.max_sessions,)
            ).fetchone()
            if found is not None:
                cutoff = found[0]
        if self.max_rows:
            (total,) = conn.execute("SELECT COUNT(*) FROM history WHERE session > ?", (cutoff,)).fetchone()
            if total > self.max_rows:
                counts = conn.execute(
                    "SELECT session, COUNT(*) FROM history WHERE session > ? AND session < ? "
                    "GROUP BY session ORDER BY session",
                    (cutoff, self._session),
                ).fetchall()
                for session, count in counts:
                    if total <= self.max_rows:
                        break
                    cutoff, total = session, total - count
        cutoff = min(cutoff, self._session - 1)
        if cutoff <= 0:
            return
        with self._transaction() as conn:
            for table in ("history", "output_history", "sessions"):
                conn.execute(f"DELETE FROM {table} WHERE session <= ?", (cutoff,))
        log.debug("history: deleted sessions up to %d from %s", cutoff, self.path)

    # -- queries ----------------------------------------------------------------

    def _query(self, where: str, params: tuple[Any, ...], order: str, *, unique: bool = False) -> list[Row]:
        """Rows of ``history`` (with their output) after writing what is pending."""
        self.flush()
        self._ensure_open()
        sql = (
            "SELECT h.session, h.line, h.source, h.source_raw, o.output"
            + (f", MAX(h.session * {_LINE_FACTOR} + h.line)" if unique else "")
            + " FROM history h LEFT JOIN output_history o ON o.session = h.session AND o.line = h.line "
            + where
            + (" GROUP BY h.source_raw " if unique else " ")
            + order
        )
        # Requests may carry any integer; SQLite takes 64 bits (and a larger one is no reason to
        # give up the file below).
        params = tuple(_clamp_int64(p) if isinstance(p, int) else p for p in params)
        try:
            return [row[:5] for row in self.conn.execute(sql, params)]
        except Exception as err:  # a damaged file: answer from memory (this session) from now on
            self._fall_back(err)
            return [row[:5] for row in self.conn.execute(sql, params)]

    def tail(self, n: int, raw: bool = True, output: bool = False) -> list[list[Any]]:
        """The last ``n`` cells over all sessions, oldest first."""
        if self.path is None or n <= 0:
            return []
        rows = self._query("", (n,), "ORDER BY h.session DESC, h.line DESC LIMIT ?")
        return _shape(rows[::-1], raw, output)

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
            found = self.conn.execute("SELECT MAX(line) FROM history WHERE session = ?", (session,))
            end = (found.fetchone()[0] or 0) + 1
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


def _timestamp(seconds: float) -> str:
    """Local time as IPython stores it ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    import datetime

    return datetime.datetime.fromtimestamp(seconds).isoformat(" ")


def _shape(rows: list[Row], raw: bool, output: bool) -> list[list[Any]]:
    """Reply items: ``[session, line, input]``, or ``[session, line, [input, output]]``."""
    column = 3 if raw else 2
    if output:
        return [[row[0], row[1], [row[column], row[4]]] for row in rows]
    return [[row[0], row[1], row[column]] for row in rows]


def _clamp_int64(value: int) -> int:
    """``value`` limited to SQLite's INTEGER range (a LIMIT past it already means "all")."""
    return max(-(2**63), min(2**63 - 1, value))
