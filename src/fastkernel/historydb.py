"""The SQLite side of the input history: IPython's schema and every statement run on it.

:class:`~fastkernel.history.HistoryStore` decides when to write and what to do when the file
fails; the functions here take an open connection and run one step each. The schema is
IPython's (``sessions``, ``history``, ``output_history``), so IPython's ``HistoryAccessor``
can read the file. ``sqlite3`` is imported by :func:`connect`, not at kernel start.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MEMORY = ":memory:"
_LINE_FACTOR = 1 << 32  # session * _LINE_FACTOR + line orders cells across sessions

# (session, line, source, source_raw, output)
Row = tuple[int, int, str, str, "str | None"]
# A connection: sqlite3.Connection, not imported here at kernel start.
Connection = Any

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (session integer primary key autoincrement,
        start timestamp, end timestamp, num_cmds integer, remark text)""",
    """CREATE TABLE IF NOT EXISTS history (session integer, line integer,
        source text, source_raw text, PRIMARY KEY (session, line))""",
    """CREATE TABLE IF NOT EXISTS output_history (session integer, line integer,
        output text, PRIMARY KEY (session, line))""",
)


def connect(path: str, busy_timeout: float) -> Connection:
    """Open ``path`` (or :data:`MEMORY`), creating its directory and the tables.

    A file uses WAL journal mode, ``synchronous=NORMAL`` and a busy timeout, so several
    kernels can share it. Autocommit mode: writes go through :func:`transaction`.
    """
    import sqlite3

    if path != MEMORY:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Used from the main thread and from subshells' threads, one at a time (HistoryStore's lock).
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
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


@contextlib.contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """BEGIN IMMEDIATE (takes the write lock at once, waiting up to the busy timeout), COMMIT."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def start_session(conn: Connection, started: float, number: int | None = None) -> int:
    """Add this kernel's session (``number``, or the next free one), started at ``started``."""
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO sessions (session, start, num_cmds, remark) VALUES (?, ?, 0, ?)",
            (number, timestamp(started), f"fastkernel pid {os.getpid()}"),
        )
    return int(cursor.lastrowid)


def end_session(conn: Connection, session: int, cells: int) -> None:
    """Note the session's end time and its number of cells."""
    with transaction(conn):
        conn.execute(
            "UPDATE sessions SET end = ?, num_cmds = ? WHERE session = ?",
            (timestamp(time.time()), cells, session),
        )


def write(conn: Connection, session: int, cells: dict[int, tuple[str, str]], outputs: dict[int, str]) -> None:
    """Store ``cells`` (line -> (source, source_raw)) and ``outputs`` (line -> text) in one transaction."""
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)",
            [(session, line, source, raw) for line, (source, raw) in cells.items()],
        )
        if outputs:
            conn.executemany(
                "INSERT OR REPLACE INTO output_history VALUES (?, ?, ?)",
                [(session, line, text) for line, text in outputs.items()],
            )


def prune(conn: Connection, session: int, max_sessions: int, max_rows: int) -> int:
    """Delete the oldest sessions beyond ``max_sessions`` and ``max_rows`` (0: no bound).

    ``session`` (the running one) is never deleted. Returns the last session deleted, or 0.
    """
    cutoff = 0  # sessions up to this one go
    if max_sessions:
        found = conn.execute(
            "SELECT session FROM sessions ORDER BY session DESC LIMIT 1 OFFSET ?", (max_sessions,)
        ).fetchone()
        if found is not None:
            cutoff = found[0]
    if max_rows:
        (total,) = conn.execute("SELECT COUNT(*) FROM history WHERE session > ?", (cutoff,)).fetchone()
        if total > max_rows:
            counts = conn.execute(
                "SELECT session, COUNT(*) FROM history WHERE session > ? AND session < ? "
                "GROUP BY session ORDER BY session",
                (cutoff, session),
            ).fetchall()
            for older, count in counts:
                if total <= max_rows:
                    break
                cutoff, total = older, total - count
    cutoff = min(cutoff, session - 1)
    if cutoff <= 0:
        return 0
    with transaction(conn):
        for table in ("history", "output_history", "sessions"):
            conn.execute(f"DELETE FROM {table} WHERE session <= ?", (cutoff,))
    return cutoff


def select(
    conn: Connection, where: str, params: tuple[Any, ...], order: str, *, unique: bool = False
) -> list[Row]:
    """Rows of ``history`` with their output: ``WHERE`` clause, its parameters, ``ORDER BY``/``LIMIT``.

    ``unique``: each ``source_raw`` once, at its latest run.
    """
    sql = (
        "SELECT h.session, h.line, h.source, h.source_raw, o.output"
        + (f", MAX(h.session * {_LINE_FACTOR} + h.line)" if unique else "")
        + " FROM history h LEFT JOIN output_history o ON o.session = h.session AND o.line = h.line "
        + where
        + (" GROUP BY h.source_raw " if unique else " ")
        + order
    )
    # Requests may carry any integer; SQLite takes 64 bits (and an OverflowError would look like
    # a damaged file to the store, which would then give the file up).
    params = tuple(_clamp_int64(p) if isinstance(p, int) else p for p in params)
    return [row[:5] for row in conn.execute(sql, params)]


def last_line(conn: Connection, session: int) -> int:
    """The highest cell number stored for ``session`` (0 if none)."""
    found = conn.execute("SELECT MAX(line) FROM history WHERE session = ?", (session,))
    return int(found.fetchone()[0] or 0)


def timestamp(seconds: float) -> str:
    """Local time as IPython stores it ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    import datetime

    return datetime.datetime.fromtimestamp(seconds).isoformat(" ")


def _clamp_int64(value: int) -> int:
    """``value`` limited to SQLite's INTEGER range (a LIMIT past it already means "all")."""
    return max(-(2**63), min(2**63 - 1, value))
