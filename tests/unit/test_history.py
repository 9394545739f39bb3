"""fastkernel.history.HistoryStore: SQLite input history behind history_request."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fastkernel.history import HistoryStore, default_history_file, jupyter_data_dir


def store_with(cells: list[str], path: str | Path = ":memory:", **kwargs: object) -> HistoryStore:
    store = HistoryStore(path, **kwargs)  # type: ignore[arg-type]
    for line, code in enumerate(cells, 1):
        store.record(line, code)
    return store


def rows(path: Path, sql: str = "SELECT session, line, source_raw FROM history ORDER BY 1, 2") -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- the running session ----------------------------------------------------------------------


def test_tail_returns_the_last_n_oldest_first() -> None:
    store = store_with(["a = 1", "b = 2", "c = 3"])
    session = store.session
    assert store.tail(2) == [[session, 2, "b = 2"], [session, 3, "c = 3"]]
    assert store.tail(10) == [[session, 1, "a = 1"], [session, 2, "b = 2"], [session, 3, "c = 3"]]
    assert store.tail(0) == []


def test_cells_are_visible_before_any_write(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = store_with(["x = 1"], path)
    assert not path.exists()  # nothing written, not even opened, until idle or a query
    assert [item[2] for item in store.tail(5)] == ["x = 1"]
    store.record(2, "y = 2")
    assert [item[2] for item in store.tail(5)] == ["x = 1", "y = 2"]
    store.close()


def test_raw_gives_what_was_typed_else_the_transformed_source() -> None:
    store = HistoryStore()
    store.record(1, "%time x", "MAGICS.run_line('time', 'x')")
    assert store.tail(1, raw=True)[0][2] == "%time x"
    assert store.tail(1, raw=False)[0][2] == "MAGICS.run_line('time', 'x')"


def test_output_items_pair_input_and_text_output() -> None:
    store = HistoryStore(store_output=True)
    store.record_output(1, {"text/plain": "42", "text/html": "<b>42</b>"})  # during the cell
    store.record(1, "6 * 7")
    store.record(2, "x = 1")
    session = store.session
    assert store.tail(2, output=True) == [[session, 1, ["6 * 7", "42"]], [session, 2, ["x = 1", None]]]
    assert store.tail(2) == [[session, 1, "6 * 7"], [session, 2, "x = 1"]]


def test_outputs_are_not_kept_unless_asked() -> None:
    store = HistoryStore()
    store.record_output(1, {"text/plain": "42"})
    store.record(1, "6 * 7")
    assert store.tail(1, output=True) == [[store.session, 1, ["6 * 7", None]]]


def test_range_start_stop_and_open_end() -> None:
    store = store_with(["c1", "c2", "c3", "c4"])
    s = store.session
    assert store.range(0, 2, 4) == [[s, 2, "c2"], [s, 3, "c3"]]
    assert store.range(s, 2, 3) == [[s, 2, "c2"]]
    assert store.range(0, 3) == [[s, 3, "c3"], [s, 4, "c4"]]
    assert store.range(0, 3, 0) == [[s, 3, "c3"], [s, 4, "c4"]]  # stop 0: to the end, as IPython
    assert store.range(0, -2) == [[s, 3, "c3"], [s, 4, "c4"]]  # counted back from the end
    assert store.range(0, 1, -2) == [[s, 1, "c1"], [s, 2, "c2"]]
    assert store.range(0, 9) == []


def test_search_globs_inputs_case_sensitively() -> None:
    store = store_with(["import os", "x = 1", "import sys", "Import nothing", "y = 12"])
    s = store.session
    assert store.search("import *") == [[s, 1, "import os"], [s, 3, "import sys"]]
    assert store.search("? = 1?") == [[s, 5, "y = 12"]]
    assert store.search("[xy] = *") == [[s, 2, "x = 1"], [s, 5, "y = 12"]]
    assert store.search("*nothing at all*") == []


def test_search_unique_keeps_each_input_once_at_its_latest_run() -> None:
    store = store_with(["a", "b", "a", "c", "b"])
    s = store.session
    assert store.search("*", unique=True) == [[s, 3, "a"], [s, 4, "c"], [s, 5, "b"]]
    assert store.search("*", unique=True, n=2) == [[s, 4, "c"], [s, 5, "b"]]


def test_search_n_keeps_the_last_n_matches() -> None:
    store = store_with(["a1", "b", "a2", "a3"])
    s = store.session
    assert store.search("a*", n=2) == [[s, 3, "a2"], [s, 4, "a3"]]
    assert store.search("a*", n=0) == []


def test_disabled_store_keeps_nothing() -> None:
    store = HistoryStore(None)
    store.record(1, "x = 1")
    assert not store.enabled
    assert store.tail(10) == [] and store.range(0) == [] and store.search("*") == []
    assert store.on_idle() is None
    store.close()


# -- the file ---------------------------------------------------------------------------------


def test_a_new_store_is_a_new_session_and_sees_the_previous_ones(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    first = store_with(["first = 1", "first + 1"], path)
    first.close()
    second = store_with(["second = 2"], path)
    assert second.session == first.session + 1
    assert second.range(-1) == [[first.session, 1, "first = 1"], [first.session, 2, "first + 1"]]
    assert [item[2] for item in second.tail(3)] == ["first = 1", "first + 1", "second = 2"]
    assert second.search("first*", unique=True, n=1) == [[first.session, 2, "first + 1"]]
    second.close()
    journal = rows(path, "PRAGMA journal_mode")
    assert journal == [("wal",)]
    ended = rows(path, "SELECT session, num_cmds, end IS NOT NULL FROM sessions ORDER BY session")
    assert ended == [(first.session, 2, 1), (second.session, 1, 1)]


def test_the_file_is_written_when_idle_at_most_every_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path, flush_interval=0.2)
    assert store.on_idle() is None  # nothing recorded: nothing to do, nothing opened
    assert not path.exists()
    store.record(1, "x = 1")
    assert store.on_idle() is None  # written at once: the first write is always due
    assert rows(path) == [(1, 1, "x = 1")]
    store.record(2, "y = 2")
    wait = store.on_idle()
    assert wait is not None and 0 < wait <= 0.2  # too soon after the last write: call back later
    assert rows(path) == [(1, 1, "x = 1")]
    time.sleep(wait)
    assert store.on_idle() is None
    assert rows(path) == [(1, 1, "x = 1"), (1, 2, "y = 2")]
    store.close()


def test_queued_cells_are_written_before_the_next_cell_when_due(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path, flush_interval=0.2)
    store.flush_if_due()  # nothing pending: nothing opened
    assert not path.exists()
    store.record(1, "x = 1")
    store.flush_if_due()
    assert rows(path) == [(1, 1, "x = 1")]
    store.record(2, "y = 2")
    store.flush_if_due()  # written 0.2 s ago at most: not yet
    assert rows(path) == [(1, 1, "x = 1")]
    store.close()
    assert rows(path) == [(1, 1, "x = 1"), (1, 2, "y = 2")]


def test_outputs_are_written_with_their_cells(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path, store_output=True)
    store.record_output(1, {"text/plain": "'ab'"})
    store.record(1, "'a' + 'b'")
    store.close()
    assert rows(path, "SELECT session, line, output FROM output_history") == [(1, 1, "'ab'")]
    later = HistoryStore(path)
    assert later.range(-1, output=True) == [[1, 1, ["'a' + 'b'", "'ab'"]]]
    later.close()


def sessions(path: Path) -> list[int]:
    return [row[0] for row in rows(path, "SELECT session FROM sessions ORDER BY session")]


def test_pruning_keeps_the_newest_max_sessions(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    for number in range(5):
        store_with([f"s{number}"], path).close()
    store = store_with(["now"], path, max_sessions=3)
    assert store.session == 6
    store.close()
    assert sessions(path) == [4, 5, 6]
    assert [row[0] for row in rows(path)] == [4, 5, 6]


def test_pruning_drops_oldest_sessions_beyond_max_rows_but_never_the_running_one(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    for size in (3, 3, 2):
        store_with(["x"] * size, path).close()
    store_with(["y"], path, max_rows=5).close()  # 8 rows before it starts: session 1 goes
    assert sessions(path) == [2, 3, 4]
    store = store_with(["z"] * 4, path, max_rows=1)  # 6 rows: sessions 2 and 3 go
    assert [item[2] for item in store.tail(10)] == ["y", "z", "z", "z", "z"]  # over the bound: kept
    store.close()
    assert sessions(path) == [4, 5]


def test_a_corrupt_file_falls_back_to_memory_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = store_with(["x = 1", "y = 2"], path)
    with caplog.at_level(logging.WARNING, logger="fastkernel"):
        assert [item[2] for item in store.tail(5)] == ["x = 1", "y = 2"]
        store.record(3, "z = 3")
        store.flush()
        assert [item[2] for item in store.range(0)] == ["x = 1", "y = 2", "z = 3"]
    assert store.fell_back
    warnings = [r for r in caplog.records if r.name == "fastkernel" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    store.close()
    assert path.read_bytes().startswith(b"this is not a database")  # left alone


def test_a_file_locked_past_the_busy_timeout_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.sqlite"
    store_with(["before"], path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = store_with(["x = 1"], path, busy_timeout=0.1)
        with caplog.at_level(logging.WARNING, logger="fastkernel"):
            assert [item[2] for item in store.tail(5)] == ["x = 1"]
        assert store.fell_back
        assert any("cannot be used" in r.getMessage() for r in caplog.records)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_file_that_fails_mid_session_keeps_the_sessions_cells(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = store_with(["a", "b"], path)
    session = store.session
    store.flush()
    store.conn.execute("DROP TABLE history")  # writes now fail as a damaged file would
    store.record(3, "c")
    store.flush()
    assert store.fell_back
    assert store.range(0) == [[session, 1, "a"], [session, 2, "b"], [session, 3, "c"]]


WRITER = textwrap.dedent(
    """
    import sys
    from fastkernel.history import HistoryStore

    store = HistoryStore(sys.argv[1], flush_interval=0)
    for line in range(1, 201):
        store.record(line, f"{sys.argv[2]} {line}")
        store.on_idle()  # a write per cell: as many transactions as can collide
    assert [item[2] for item in store.range(0, 1, 3)] == [f"{sys.argv[2]} 1", f"{sys.argv[2]} 2"]
    store.close()
    print(store.fell_back)
    """
)


def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stdout=subprocess.PIPE, text=True)
        for name in ("one", "two")
    ]
    outs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert outs == ["False\n", "False\n"]  # neither fell back to memory
    found = rows(path)
    assert len(found) == 400
    assert {row[0] for row in found} == {1, 2}
    by_session = {s: [r[2] for r in found if r[0] == s] for s in (1, 2)}
    assert sorted(v[0].split()[0] for v in by_session.values()) == ["one", "two"]
    for inputs in by_session.values():
        name = inputs[0].split()[0]
        assert inputs == [f"{name} {line}" for line in range(1, 201)]


def test_ipython_can_read_the_file(tmp_path: Path) -> None:
    history = pytest.importorskip("IPython.core.history")
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path, store_output=True)
    store.record_output(2, {"text/plain": "2"})
    store.record(1, "a = 1")
    store.record(2, "a + 1")
    store.close()
    accessor = history.HistoryAccessor(hist_file=str(path))
    assert list(accessor.get_tail(5, output=True, include_latest=True)) == [
        (1, 1, ("a = 1", None)),
        (1, 2, ("a + 1", "2")),
    ]
    assert accessor.get_session_info(1)[3:] == (2, f"fastkernel pid {os.getpid()}")


# -- where the file is ------------------------------------------------------------------------


def test_default_file_is_in_the_jupyter_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert default_history_file() == tmp_path / "data" / "fastkernel" / "history.sqlite"
    monkeypatch.delenv("JUPYTER_DATA_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert jupyter_data_dir() == tmp_path / "xdg" / "jupyter"
        monkeypatch.delenv("XDG_DATA_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert jupyter_data_dir() == tmp_path / "home" / ".local" / "share" / "jupyter"


def test_data_dir_matches_jupyter_core(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths = pytest.importorskip("jupyter_core.paths")
    monkeypatch.delenv("JUPYTER_DATA_DIR", raising=False)
    monkeypatch.delenv("JUPYTER_PLATFORM_DIRS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert jupyter_data_dir() == Path(paths.jupyter_data_dir())
