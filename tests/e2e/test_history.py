"""history_request through a real kernel, with its SQLite history file in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import KernelHarness
from tests.kernels import Kernels


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite"


@pytest.fixture
def start(history_file: Path, kernels: Kernels) -> Callable[..., KernelHarness]:
    """Start kernels keeping their history in ``history_file``; all are closed at the end."""

    def start_kernel(*args: str) -> KernelHarness:
        return KernelHarness.connect(kernels.start(*args, history_file=str(history_file)))

    return start_kernel


def history(kernel: KernelHarness, **content: Any) -> list[list[Any]]:
    reply = kernel.request("history_request", {"raw": True, "output": False, **content}).content
    assert reply["status"] == "ok", reply
    return reply["history"]


def run(kernel: KernelHarness, code: str, **content: Any) -> None:
    reply = kernel.execute(code, **content).content
    assert reply["status"] == "ok", reply


def test_sqlite_is_not_imported_at_start_and_cells_are_visible_at_once(
    start: Callable[..., KernelHarness], history_file: Path
) -> None:
    kernel = start()
    execution = kernel.execute("import sys\n'sqlite3' in sys.modules")
    assert execution.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "False"
    run(kernel, "x = 6 * 7")
    items = history(kernel, hist_access_type="tail", n=10)
    session = items[0][0]
    assert items == [[session, 1, "import sys\n'sqlite3' in sys.modules"], [session, 2, "x = 6 * 7"]]
    assert history_file.exists()


def test_tail_range_and_search(start: Callable[..., KernelHarness]) -> None:
    kernel = start("--history-store-output")
    for code in ("a = 1", "a + 1", "b = 'x'", "a + 1"):
        run(kernel, code)
    run(kernel, "hidden = 1", silent=True)  # neither silent cells nor store_history=False are kept
    run(kernel, "not_kept = 2", store_history=False)
    tail = history(kernel, hist_access_type="tail", n=3)
    s = tail[0][0]
    assert tail == [[s, 2, "a + 1"], [s, 3, "b = 'x'"], [s, 4, "a + 1"]]
    assert history(kernel, hist_access_type="range", session=0, start=2, stop=4) == [
        [s, 2, "a + 1"],
        [s, 3, "b = 'x'"],
    ]
    assert history(kernel, hist_access_type="range", session=s, start=4, stop=None) == [[s, 4, "a + 1"]]
    assert history(kernel, hist_access_type="search", pattern="a*") == [
        [s, 1, "a = 1"],
        [s, 2, "a + 1"],
        [s, 4, "a + 1"],
    ]
    assert history(kernel, hist_access_type="search", pattern="a*", unique=True) == [
        [s, 1, "a = 1"],
        [s, 4, "a + 1"],
    ]
    assert history(kernel, hist_access_type="search", pattern="a*", n=1) == [[s, 4, "a + 1"]]
    assert history(kernel, hist_access_type="tail", n=2, output=True) == [
        [s, 3, ["b = 'x'", None]],
        [s, 4, ["a + 1", "2"]],
    ]


@pytest.mark.parametrize(
    "content",
    [
        {"hist_access_type": "sideways"},
        {"raw": True},  # no hist_access_type
        {"hist_access_type": "tail"},  # no n
        {"hist_access_type": "tail", "n": -1},
        {"hist_access_type": "tail", "n": "3"},
        {"hist_access_type": "search"},  # no pattern
        {"hist_access_type": "search", "pattern": "*", "n": -2},
        {"hist_access_type": "range", "session": "current"},
    ],
)
def test_bad_history_requests_get_bad_request(kernel: KernelHarness, content: dict[str, Any]) -> None:
    reply = kernel.request("history_request", content).content
    assert reply["status"] == "error"
    assert reply["ename"] == "BadRequest"


def test_history_survives_a_restart(start: Callable[..., KernelHarness]) -> None:
    kernel = start()
    run(kernel, "before = 'restart'")
    run(kernel, "before * 2")
    (first,) = {item[0] for item in history(kernel, hist_access_type="tail", n=5)}
    kernel.process.restart()
    kernel.kc.wait_for_ready(timeout=20)
    kernel.drain_iopub()
    # What jupyter console asks at start for its up-arrow history: the last session comes back.
    assert history(kernel, hist_access_type="tail", n=1000) == [
        [first, 1, "before = 'restart'"],
        [first, 2, "before * 2"],
    ]
    run(kernel, "after = 1")
    assert history(kernel, hist_access_type="range", session=-1, start=1, stop=None) == [
        [first, 1, "before = 'restart'"],
        [first, 2, "before * 2"],
    ]
    assert history(kernel, hist_access_type="range", session=0, start=1) == [[first + 1, 1, "after = 1"]]


def test_two_kernels_write_one_file_at_once(start: Callable[..., KernelHarness], history_file: Path) -> None:
    kernels = [start(), start()]
    ids: list[str] = []
    for i in range(30):  # both kernels run cells at the same time
        ids += [k.kc.execute(f"k{n} = {i}") for n, k in enumerate(kernels)]
    for n, kernel in enumerate(kernels):
        for msg_id in ids[n::2]:
            assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    sessions = []
    for n, kernel in enumerate(kernels):
        items = history(kernel, hist_access_type="range", session=0, start=1)
        assert [item[2] for item in items] == [f"k{n} = {i}" for i in range(30)]
        sessions.append(items[0][0])
    assert sessions[0] != sessions[1]
    for kernel in kernels:
        kernel.close()
    conn = sqlite3.connect(history_file)
    try:
        counts = dict(conn.execute("SELECT session, COUNT(*) FROM history GROUP BY session").fetchall())
        ended = conn.execute("SELECT COUNT(*) FROM sessions WHERE end IS NOT NULL").fetchone()[0]
    finally:
        conn.close()
    assert counts == {sessions[0]: 30, sessions[1]: 30}
    assert ended == 2  # both wrote their session's end at shutdown


def test_no_history_keeps_nothing(start: Callable[..., KernelHarness], history_file: Path) -> None:
    kernel = start("--no-history")
    run(kernel, "x = 1")
    assert history(kernel, hist_access_type="tail", n=10) == []
    assert not history_file.exists()
