"""Execution semantics end to end: a real kernel behaves like real Python (issue 3, execution)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.harness import Execution, KernelHarness

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # tracebacks are coloured


def _ok(kernel: KernelHarness, code: str) -> Execution:
    ex = kernel.execute(code)
    assert ex.content["status"] == "ok", "\n".join(ex.content.get("traceback", []))
    return ex


def _result(ex: Execution) -> str:
    (result,) = ex.of_type("execute_result")
    return result["content"]["data"]["text/plain"]


def _error_text(ex: Execution) -> str:
    assert ex.content["status"] == "error"
    (error,) = ex.of_type("error")
    assert error["content"]["traceback"] == ex.content["traceback"]
    return "\n".join(ex.content["traceback"])


# -- 1. display --------------------------------------------------------------------------------


def test_semicolons_in_comments_and_strings_do_not_hide_the_result(kernel: KernelHarness) -> None:
    assert _result(_ok(kernel, "1 + 1  # comment; with a semicolon")) == "2"
    assert _result(_ok(kernel, "x_semi2 = ';'\nx_semi2")) == "';'"
    assert _ok(kernel, "2 + 2;  # hidden").of_type("execute_result") == []


def test_expressions_inside_blocks_display_nothing(kernel: KernelHarness) -> None:
    ex = _ok(kernel, "for i_blk in range(3):\n    i_blk\nif True:\n    'inside'")
    assert ex.of_type("execute_result") == []


def test_future_import_persists_across_cells(kernel: KernelHarness) -> None:
    _ok(kernel, "from __future__ import annotations")
    ex = _ok(kernel, "def fut(x: NotDefinedAnywhere) -> None:\n    pass\nfut.__annotations__['x']")
    assert _result(ex) == "'NotDefinedAnywhere'"


# -- 2. top-level await ------------------------------------------------------------------------


def test_asyncio_is_imported_by_the_first_await_not_at_start(fresh_kernel: KernelHarness) -> None:
    ex = _ok(
        fresh_kernel,
        "import sys\nsorted(m for m in ('asyncio', 'multiprocessing', 'pydoc') if m in sys.modules)",
    )
    assert _result(ex) == "[]"
    ex = _ok(fresh_kernel, "async def aw():\n    return 'awaited'\nawait aw()")
    assert _result(ex) == "'awaited'"
    assert _result(_ok(fresh_kernel, "'asyncio' in sys.modules")) == "True"


def test_async_for_and_async_with(kernel: KernelHarness) -> None:
    _ok(
        kernel,
        "import contextlib\n"
        "async def agen():\n    for i in range(3):\n        yield i\n"
        "@contextlib.asynccontextmanager\nasync def actx():\n    yield 'ctx'\n",
    )
    ex = _ok(
        kernel,
        "got_async = []\nasync for n in agen():\n    got_async.append(n)\n"
        "async with actx() as c:\n    got_async.append(c)\ngot_async",
    )
    assert _result(ex) == "[0, 1, 2, 'ctx']"


def test_task_progresses_across_await_cells_on_one_loop(kernel: KernelHarness) -> None:
    _ok(
        kernel,
        "import asyncio\nticks_e2e = []\n"
        "async def tick_e2e():\n    while True:\n"
        "        ticks_e2e.append(1)\n        await asyncio.sleep(0)\n"
        "tick_task = asyncio.get_running_loop().create_task(tick_e2e())\n"
        "first_loop = asyncio.get_running_loop()\nawait asyncio.sleep(0)",
    )
    try:
        ex = _ok(
            kernel,
            "seen = len(ticks_e2e)\nfor _ in range(5):\n    await asyncio.sleep(0)\n"
            "(len(ticks_e2e) > seen, asyncio.get_running_loop() is first_loop, tick_task.done())",
        )
        assert _result(ex) == "(True, True, False)"
    finally:
        _ok(kernel, "tick_task.cancel()")  # it never sleeps: stop it spinning the idle kernel


def test_task_keeps_running_between_cells(kernel: KernelHarness, tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    _ok(
        kernel,
        "import asyncio, pathlib\n"
        "async def heartbeat(path):\n    n = 0\n    while True:\n        n += 1\n"
        "        path.write_text(str(n))\n        await asyncio.sleep(0.01)\n"
        f"beat_task = asyncio.get_running_loop().create_task(heartbeat(pathlib.Path({str(beat)!r})))\n"
        "await asyncio.sleep(0)",
    )
    try:
        first = beat.read_text()
        deadline = time.monotonic() + 5
        while beat.read_text() == first and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the file the idle kernel's task should keep writing
        assert beat.read_text() != first, "the task did not run while the kernel was idle"
    finally:
        _ok(kernel, "beat_task.cancel()")


def test_asyncio_run_works_in_plain_cells_and_explains_itself_in_await_cells(kernel: KernelHarness) -> None:
    _ok(kernel, "import asyncio\nasync def seven():\n    return 7")
    assert _result(_ok(kernel, "asyncio.run(seven())")) == "7"
    ex = kernel.execute("await asyncio.sleep(0)\nasyncio.run(seven())")
    assert ex.content["ename"] == "RuntimeError"
    assert "Write `await main()` instead of `asyncio.run(main())`" in ex.content["evalue"]
    assert _result(_ok(kernel, "await seven()")) == "7"


# -- 3. __main__ -------------------------------------------------------------------------------


def test_cell_classes_pickle_and_work_with_dataclasses_enum_typing(kernel: KernelHarness) -> None:
    _ok(
        kernel,
        "import dataclasses, enum, pickle, typing\n"
        "class Shade(enum.Enum):\n    DARK = 1\n"
        "@dataclasses.dataclass\nclass Pt:\n    x: int\n    shade: 'Shade' = Shade.DARK\n"
        "def uses(p: 'Pt') -> 'Shade':\n    return p.shade\n",
    )
    ex = _ok(
        kernel,
        "(__name__, pickle.loads(pickle.dumps(Pt(2))), pickle.loads(pickle.dumps(Shade.DARK)) is Shade.DARK,"
        " typing.get_type_hints(uses)['p'] is Pt)",
    )
    assert _result(ex) == "('__main__', Pt(x=2, shade=<Shade.DARK: 1>), True, True)"


# -- 4. sources --------------------------------------------------------------------------------


def test_inspect_getsource_for_cell_functions_and_classes(kernel: KernelHarness) -> None:
    _ok(kernel, "import inspect\ndef src_fn(a):\n    return a + 1\nclass SrcClass:\n    size = 3")
    ex = _ok(kernel, "print(inspect.getsource(src_fn), end='')\nprint(inspect.getsource(SrcClass), end='')")
    assert ex.stream_text() == "def src_fn(a):\n    return a + 1\nclass SrcClass:\n    size = 3\n"


def test_traceback_has_user_frames_with_cell_labels_only(kernel: KernelHarness) -> None:
    first = _ok(kernel, "def fails_later(n):\n    return n / 0")
    ex = kernel.execute("fails_later(5)")
    text = _ANSI.sub("", _error_text(ex))
    count, defined_in = ex.content["execution_count"], first.content["execution_count"]
    assert text == (  # the default Context mode (tests/e2e/test_tracebacks.py has the others)
        f"{'-' * 75}\nZeroDivisionError                         Traceback (most recent call last)\n"
        f"Cell In[{count}], line 1\n----> 1 fails_later(5)\n\n"
        f"Cell In[{defined_in}], line 2, in fails_later\n      1 def fails_later(n):\n"
        "----> 2     return n / 0\n                   ~~^~~\n\n"
        "ZeroDivisionError: division by zero"
    )


def test_traceback_of_an_await_cell_has_no_asyncio_frames(kernel: KernelHarness) -> None:
    ex = kernel.execute("import asyncio\nasync def afail():\n    raise KeyError('async')\nawait afail()")
    text = _error_text(ex)
    assert "asyncio" not in text.replace("import asyncio", "") and "fastkernel" not in text
    assert ex.content["ename"] == "KeyError"


def test_syntax_and_indentation_errors_show_label_line_and_caret(kernel: KernelHarness) -> None:
    ex = kernel.execute("a_syn = 1\nb_syn = (1,,)")
    count = ex.content["execution_count"]
    assert ex.content["ename"] == "SyntaxError"
    traceback = [_ANSI.sub("", line) for line in ex.content["traceback"]]
    assert traceback[0] == f"  Cell In[{count}], line 2"
    assert traceback[1:3] == ["    b_syn = (1,,)", "               ^"]
    ex = kernel.execute("if True:\n    a_ind = 1\n      b_ind = 2")
    assert ex.content["ename"] == "IndentationError"
    assert [_ANSI.sub("", line) for line in ex.content["traceback"][:2]] == [
        f"  Cell In[{ex.content['execution_count']}], line 3",
        "    b_ind = 2",
    ]


def test_warnings_show_the_cell_label_once_per_cell(kernel: KernelHarness) -> None:
    defined = _ok(kernel, "import warnings\ndef warn_e2e():\n    warnings.warn('careful')")
    ex = _ok(kernel, "for _ in range(3):\n    warn_e2e()")
    label = f"Cell In[{defined.content['execution_count']}], line 3"
    assert ex.stream_text("stderr") == f"{label}: UserWarning: careful\n  warnings.warn('careful')\n"
    again = _ok(kernel, "warn_e2e()")  # a new cell: shown again
    assert again.stream_text("stderr") == ex.stream_text("stderr")


# -- 5. multiprocessing with spawn ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_spawn_pool_and_process_run_cell_functions(kernel: KernelHarness) -> None:
    ex = _ok(
        kernel,
        "import multiprocessing as mp\nspawn = mp.get_context('spawn')\n"
        "def sq_e2e(x):\n    return x * x\n"
        "def put_sq(q, n):\n    q.put(sq_e2e(n))\n"
        "with spawn.Pool(1) as pool:\n    print(pool.map(sq_e2e, [1, 2]))\n"
        "q_e2e = spawn.Queue()\nproc = spawn.Process(target=put_sq, args=(q_e2e, 4))\nproc.start()\n"
        "print(q_e2e.get(timeout=30))\nproc.join(30)\nproc.exitcode",
    )
    assert ex.stream_text() == "[1, 4]\n16\n"
    assert _result(ex) == "0"


@pytest.mark.timeout(30)
def test_spawn_fails_fast_with_a_clear_error_for_what_cannot_be_sent(kernel: KernelHarness) -> None:
    ex = kernel.execute(
        "import enum, multiprocessing as mp\nclass Hue(enum.Enum):\n    RED = 1\n"
        "def hue(i):\n    return Hue.RED\n"
        "with mp.get_context('spawn').Pool(1) as pool:\n    pool.map(hue, [1])"
    )
    assert ex.content["ename"] == "SpawnPicklingError"
    assert "cannot send class 'Hue', defined in a cell, to a spawned process" in ex.content["evalue"]
    assert _ok(kernel, "'alive'").content["status"] == "ok"


# -- 6. SystemExit, exit() ---------------------------------------------------------------------


def test_sys_exit_is_an_error_and_the_kernel_stays_up(kernel: KernelHarness) -> None:
    for code in ("import sys\nsys.exit(2)", "raise SystemExit('bye')"):
        ex = kernel.execute(code)
        assert ex.content["ename"] == "SystemExit"
        assert "SystemExit" in _error_text(ex)
    assert kernel.process.alive()
    assert _result(_ok(kernel, "'still up'")) == "'still up'"


def test_exit_sends_an_ask_exit_payload_without_error(kernel: KernelHarness) -> None:
    ex = _ok(kernel, "exit()")
    assert ex.content["payload"] == [{"source": "ask_exit", "keepkernel": False}]
    assert ex.of_type("error") == []
    ex = _ok(kernel, "quit(keep_kernel=True)")
    assert ex.content["payload"] == [{"source": "ask_exit", "keepkernel": True}]
    assert _ok(kernel, "'next'").content["payload"] == []


# -- 7. help() ---------------------------------------------------------------------------------


def test_help_prints_to_the_cell_stdout(kernel: KernelHarness) -> None:
    ex = _ok(kernel, "help(len)")
    assert ex.stream_text().startswith("Help on built-in function len in module builtins:\n")
    assert "Return the number of items in a container." in ex.stream_text()


# -- 8. timing in the reply metadata -----------------------------------------------------------


def test_execute_reply_metadata_has_duration_and_peak_rss_growth(kernel: KernelHarness) -> None:
    metadata = _ok(kernel, "import time\ntime.sleep(0.05)").reply["metadata"]
    assert isinstance(metadata["started"], str)
    assert 0.05 <= metadata["duration_s"] < 10
    assert isinstance(metadata["peak_rss_growth_bytes"], int)
