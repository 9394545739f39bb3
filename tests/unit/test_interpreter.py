"""The interpreter on plain values, no sockets: cells behave as they would in Python itself."""

from __future__ import annotations

import io
import os
import sys
import textwrap
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from fastkernel.interpreter.core import CellOutcome, Interpreter
from fastkernel.interpreter.tracebacks import TracebackStyle


class Cells:
    """An installed interpreter, the values it displayed, and helpers to run cells."""

    def __init__(self, interpreter: Interpreter, displayed: list[Any]) -> None:
        self.interpreter = interpreter
        self.displayed = displayed
        self.count = 0

    @property
    def ns(self) -> dict[str, Any]:
        return self.interpreter.namespace

    def run(self, source: str, **kwargs: Any) -> CellOutcome:
        self.count += 1
        return self.interpreter.run_cell(textwrap.dedent(source), f"Cell In[{self.count}]", **kwargs)

    def ok(self, source: str) -> CellOutcome:
        outcome = self.run(source)
        assert outcome.error is None, "\n".join(outcome.error.traceback)
        return outcome

    def error(self, source: str) -> Any:
        outcome = self.run(source)
        assert outcome.error is not None, "the cell did not fail"
        return outcome.error

    def value(self, expression: str) -> Any:
        """What the cell ``expression`` displays (exactly one value)."""
        before = len(self.displayed)
        self.ok(expression)
        (value,) = self.displayed[before:]
        return value


@pytest.fixture
def cells() -> Iterator[Cells]:
    displayed: list[Any] = []
    # Python's own layout without colours: these tests check which frames and labels a traceback
    # has; the %xmode modes and colours have tests of their own (tests/e2e/test_tracebacks.py).
    plain = TracebackStyle(mode="Plain", colors="off")
    interpreter = Interpreter(on_result=displayed.append, traceback_style=plain)
    interpreter.install_as_main()
    try:
        yield Cells(interpreter, displayed)
    finally:
        interpreter.uninstall()


# -- 1. compiling: what is displayed ---------------------------------------------------------


def test_last_expression_is_displayed_and_only_it(cells: Cells) -> None:
    cells.ok("1\n2\nx = 3\nx * 2")
    assert cells.displayed == [6]


@pytest.mark.parametrize(
    "source",
    ["1 + 1;", "1 + 1 ;  # a comment", "x = 5\nx;", "(1,\n 2);", "1; # ; two", "'''\n;'''  ;"],
)
def test_trailing_semicolon_hides_the_result(cells: Cells, source: str) -> None:
    cells.ok(source)
    assert cells.displayed == []


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("'a;'", "a;"),
        ("1  # comment;", 1),
        ("x = 4\nx  # done;", 4),
        ("'''\n;'''", "\n;"),
        ("a = 1; a", 1),
        ("s = 'x;'\ns", "x;"),
        ("[1,  # ;\n 2]", [1, 2]),
    ],
)
def test_semicolon_in_a_comment_or_string_does_not_hide(cells: Cells, source: str, shown: Any) -> None:
    assert cells.value(source) == shown


@pytest.mark.parametrize(
    "source",
    [
        "for i in range(3):\n    i",
        "if True:\n    5",
        "while False:\n    6",
        "with open(os.devnull) as f:\n    7",
        "try:\n    8\nfinally:\n    pass",
        "def f():\n    9\nf()",
    ],
)
def test_expressions_inside_blocks_display_nothing(cells: Cells, source: str) -> None:
    cells.ns["os"] = os
    cells.ok(source)
    assert cells.displayed == []


def test_none_and_silent_cells_display_nothing(cells: Cells) -> None:
    cells.ok("None")
    cells.run("42", display=False)
    assert cells.displayed == []


def test_future_import_persists_across_cells(cells: Cells) -> None:
    cells.ok("from __future__ import annotations")
    annotations = cells.value("def f(x: Undefined) -> Nope:\n    pass\nf.__annotations__")
    assert annotations == {"x": "Undefined", "return": "Nope"}


# -- 2. top-level await: one loop -------------------------------------------------------------


def test_top_level_await_returns_the_value(cells: Cells) -> None:
    assert cells.interpreter.event_loop is None  # no loop before the first await
    cells.ok("import asyncio\nasync def answer():\n    await asyncio.sleep(0)\n    return 42")
    assert cells.interpreter.event_loop is None
    assert cells.value("await answer()") == 42
    assert cells.interpreter.event_loop is not None


def test_async_for_and_async_with_at_top_level(cells: Cells) -> None:
    cells.ok(
        """
        import contextlib
        async def numbers():
            for i in range(3):
                yield i
        @contextlib.asynccontextmanager
        async def opened():
            yield "resource"
        """
    )
    cells.ok(
        "got = []\nasync for n in numbers():\n    got.append(n)\nasync with opened() as r:\n    got.append(r)"
    )
    assert cells.ns["got"] == [0, 1, 2, "resource"]


def test_one_event_loop_for_every_cell(cells: Cells) -> None:
    first = cells.value("import asyncio\nawait asyncio.sleep(0)\nasyncio.get_running_loop()")
    second = cells.value("await asyncio.sleep(0)\nasyncio.get_running_loop()")
    assert first is second is cells.interpreter.event_loop


def test_task_made_in_one_cell_runs_on_in_later_await_cells(cells: Cells) -> None:
    cells.ok(
        """
        import asyncio
        ticks = []
        async def tick():
            while True:
                ticks.append(1)
                await asyncio.sleep(0)
        task = asyncio.get_event_loop().create_task(tick())
        await asyncio.sleep(0)
        """
    )
    seen = len(cells.ns["ticks"])
    cells.ok("for _ in range(5):\n    await asyncio.sleep(0)")
    assert len(cells.ns["ticks"]) > seen
    assert cells.value("task.done()") is False


def test_asyncio_run_works_in_a_plain_cell(cells: Cells) -> None:
    cells.ok("import asyncio\nasync def seven():\n    return 7")
    assert cells.value("asyncio.run(seven())") == 7
    cells.ok("await asyncio.sleep(0)")  # the kernel's loop is created
    assert cells.value("asyncio.run(seven())") == 7  # still fine in a plain cell
    assert cells.value("await seven()") == 7


def test_asyncio_run_in_an_await_cell_says_to_use_await(cells: Cells) -> None:
    cells.ok("import asyncio\nasync def seven():\n    return 7")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no "coroutine was never awaited" warning
        error = cells.error("await asyncio.sleep(0)\nasyncio.run(seven())")
    assert error.ename == "RuntimeError"
    assert "await main()" in error.evalue and "asyncio.run(main())" in error.evalue
    assert cells.value("await seven()") == 7  # the loop is fine afterwards


def test_interrupted_await_cell_does_not_resume_later(cells: Cells) -> None:
    cells.ok("import asyncio\ndef interrupt():\n    raise KeyboardInterrupt")
    error = cells.error(
        "asyncio.get_running_loop().call_soon(interrupt)\nawait asyncio.sleep(30)\nresumed = True"
    )
    assert error.ename == "KeyboardInterrupt"
    pending = cells.value(
        "await asyncio.sleep(0)\n[t for t in asyncio.all_tasks() if t is not asyncio.current_task()]"
    )
    assert pending == []
    assert "resumed" not in cells.ns


# -- 3. a real __main__ ----------------------------------------------------------------------


def test_cells_run_in_a_real_main_module(cells: Cells) -> None:
    assert cells.value("__name__") == "__main__"
    assert cells.value("import sys\nsys.modules['__main__'] is sys.modules[__name__]") is True
    assert sys.modules["__main__"] is cells.interpreter.module


def test_pickle_dataclass_enum_and_type_hints_with_cell_classes(cells: Cells) -> None:
    cells.ok(
        """
        import dataclasses, enum, pickle, typing
        class Color(enum.Enum):
            RED = 1
        @dataclasses.dataclass
        class Point:
            x: int
            color: "Color" = Color.RED
        class Plain:
            def __init__(self, n):
                self.n = n
        def f(p: "Point") -> "Plain":
            pass
        """
    )
    assert cells.value("pickle.loads(pickle.dumps(Point(1)))") == cells.ns["Point"](1)
    assert cells.value("pickle.loads(pickle.dumps(Plain(3))).n") == 3
    assert cells.value("pickle.loads(pickle.dumps(Color.RED)) is Color.RED") is True
    assert cells.value("[f.name for f in dataclasses.fields(Point)]") == ["x", "color"]
    hints = cells.value("typing.get_type_hints(f)")
    assert hints == {"p": cells.ns["Point"], "return": cells.ns["Plain"]}
    assert cells.value("typing.get_type_hints(Point)") == {"x": int, "color": cells.ns["Color"]}


# -- 4. sources: linecache, tracebacks, inspect, warnings ------------------------------------


def test_traceback_shows_cell_labels_and_source_lines(cells: Cells) -> None:
    cells.ok("def divide(a):\n    return a / 0")
    error = cells.error("x = 1\ndivide(x)")
    text = "\n".join(error.traceback)
    assert "Cell In[2], line 2, in <module>" in text
    assert "    divide(x)" in text
    assert "Cell In[1], line 2, in divide" in text
    assert "    return a / 0" in text
    assert error.traceback[-1] == "ZeroDivisionError: division by zero"
    assert "fastkernel" not in text and "<cell-" not in text


def test_inspect_getsource_for_functions_and_classes(cells: Cells) -> None:
    cells.ok("import inspect\ndef square(x):\n    return x * x")
    cells.ok("class Empty:\n    pass\n\nclass WithMethod:\n    def m(self):\n        return 1")
    cells.ok(
        """
        import dataclasses
        def factory():
            class Local:
                attr = 1
            return Local
        @dataclasses.dataclass
        class Data:
            x: int
            class Inner:
                pass
        """
    )
    assert cells.value("inspect.getsource(square)") == "def square(x):\n    return x * x\n"
    assert cells.value("inspect.getsource(Empty)") == "class Empty:\n    pass\n"
    assert cells.value("inspect.getsource(WithMethod)").startswith("class WithMethod:\n    def m(self):")
    assert cells.value("inspect.getsource(factory())") == "    class Local:\n        attr = 1\n"
    assert cells.value("inspect.getsource(Data)").startswith("@dataclasses.dataclass\nclass Data:")
    assert cells.value("inspect.getsource(Data.Inner)") == "    class Inner:\n        pass\n"
    assert cells.value("inspect.getsourcefile(Empty)") == "<cell-2>"


def test_inspect_getsource_finds_the_newest_class_definition(cells: Cells) -> None:
    cells.ok("import inspect\nclass Thing:\n    size = 1")
    cells.ok("class Thing:\n    size = 2")
    assert cells.value("inspect.getsource(Thing)") == "class Thing:\n    size = 2\n"


def test_sources_survive_linecache_clearcache(cells: Cells) -> None:
    cells.ok("import inspect, linecache\ndef g():\n    raise ValueError('from g')")
    cells.ok("linecache.clearcache()")
    assert cells.value("inspect.getsource(g)") == "def g():\n    raise ValueError('from g')\n"
    error = cells.error("linecache.clearcache()\ng()")
    assert "Cell In[1], line 3, in g\n    raise ValueError('from g')" in "\n".join(error.traceback)


def test_warnings_are_labelled_with_the_cell(cells: Cells) -> None:
    stderr = io.StringIO()

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        stderr.write(warnings.formatwarning(message, category, filename, lineno, line))  # as the stdlib does

    with warnings.catch_warnings():  # pytest records warnings; show them as a plain interpreter would
        warnings.resetwarnings()
        warnings.showwarning = show
        cells.ok("import warnings\ndef warn():\n    warnings.warn('careful')\nwarn()\nwarn()")
        cells.ok("warn()")
    expected = "Cell In[1], line 3: UserWarning: careful\n  warnings.warn('careful')\n"
    assert stderr.getvalue() == expected * 2  # once per cell, not once per call


# -- 5. multiprocessing with spawn -----------------------------------------------------------


@pytest.mark.timeout(60)
def test_spawn_pool_and_process_run_cell_functions(cells: Cells) -> None:
    cells.ok(
        """
        import multiprocessing as mp
        spawn = mp.get_context("spawn")
        def square(x):
            return x * x
        def report(queue, n):
            queue.put(square(n) + 1)
        with spawn.Pool(1) as pool:
            squares = pool.map(square, [1, 2])
        queue = spawn.Queue()
        process = spawn.Process(target=report, args=(queue, 3))
        process.start()
        from_process = queue.get(timeout=30)
        process.join(30)
        """
    )
    assert cells.ns["squares"] == [1, 4]
    assert cells.ns["from_process"] == 10
    assert cells.ns["process"].exitcode == 0


@pytest.mark.timeout(60)
def test_spawn_sends_closures_classes_and_dataclasses_by_value(cells: Cells) -> None:
    cells.ok(
        """
        import dataclasses, math, multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        @dataclasses.dataclass(frozen=True)
        class Point:
            x: float
            y: float = 0.0
            def norm(self):
                return math.hypot(self.x, self.y)
        class Base:
            def kind(self):
                return "base"
        class Derived(Base):
            def kind(self):
                return "derived of " + super().kind()
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        def adder(k):
            return lambda x: x + k
        def describe(p):
            return (p, p.norm(), Derived().kind(), fact(4), len(dataclasses.fields(p)))
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            described = pool.map(describe, [Point(3.0, 4.0)])
            added = pool.map(adder(10), [1, 2])
        with ProcessPoolExecutor(1, mp_context=ctx) as executor:
            executed = list(executor.map(fact, [5]))
        """
    )
    (described,) = cells.ns["described"]
    assert described == (cells.ns["Point"](3.0, 4.0), 5.0, "derived of base", 24, 2)
    assert type(described[0]) is cells.ns["Point"]  # results come back as the kernel's class
    assert cells.ns["added"] == [11, 12]
    assert cells.ns["executed"] == [120]


@pytest.mark.timeout(30)
def test_spawn_fails_fast_and_clearly_for_what_cannot_be_sent(cells: Cells) -> None:
    cells.ok(
        """
        import enum, multiprocessing as mp
        spawn = mp.get_context("spawn")
        class Color(enum.Enum):
            RED = 1
        def color(i):
            return Color.RED
        log = open(__import__("os").devnull)
        def log_name(i):
            return log.name
        """
    )
    error = cells.error("with spawn.Pool(1) as pool:\n    pool.map(color, [1])")
    assert error.ename == "SpawnPicklingError"
    assert "cannot send class 'Color'" in error.evalue and "Enum" in error.evalue
    error = cells.error("with spawn.Pool(1) as pool:\n    pool.map(log_name, [1])")
    assert error.ename == "SpawnPicklingError"
    assert "TextIOWrapper" in error.evalue and "Move the definition into a .py module" in error.evalue
    error = cells.error("spawn.Process(target=log_name, args=(1,)).start()")
    assert error.ename == "SpawnPicklingError"


@pytest.mark.timeout(30)
def test_spawn_child_that_cannot_rebuild_a_class_reports_instead_of_hanging(cells: Cells) -> None:
    cells.ok(
        """
        import multiprocessing as mp, os
        KERNEL_PID = os.getpid()
        class Picky:
            def __init_subclass__(cls):
                if os.getpid() != KERNEL_PID:
                    raise ValueError("subclassing only in the kernel")
        class Child(Picky):
            def hello(self):
                return "hi"
        def greet(i):
            return Child().hello()
        """
    )
    error = cells.error("with mp.get_context('spawn').Pool(1) as pool:\n    pool.map(greet, [1])")
    assert error.ename == "RuntimeError"
    assert "class 'Child', defined in a notebook cell, could not be rebuilt" in error.evalue
    assert "subclassing only in the kernel" in error.evalue


@pytest.mark.skipif(sys.platform != "linux", reason="fork is the default only on Linux")
@pytest.mark.timeout(30)
def test_fork_pool_is_left_alone(cells: Cells) -> None:
    cells.ok(
        """
        import multiprocessing as mp
        big = list(range(10))
        def total(i):
            return sum(big) + i
        with mp.get_context("fork").Pool(1) as pool:
            totals = pool.map(total, [1])
        """
    )
    assert cells.ns["totals"] == [46]


# -- 6. errors, SystemExit, exit() -----------------------------------------------------------


def test_error_name_is_the_bare_class_name(cells: Cells) -> None:
    error = cells.error("class MyError(Exception):\n    pass\nraise MyError('boom')")
    assert (error.ename, error.evalue) == ("MyError", "boom")
    error = cells.error("import json\njson.loads('{')")
    assert error.ename == "JSONDecodeError"


def test_syntax_errors_show_label_line_and_caret(cells: Cells) -> None:
    error = cells.error("x = 1\ny = )")
    assert error.ename == "SyntaxError"
    assert error.traceback == ["  Cell In[1], line 2", "    y = )", "        ^", "SyntaxError: unmatched ')'"]
    error = cells.error("if True:\n    a = 1\n      b = 2")
    assert error.ename == "IndentationError"
    assert error.traceback[:2] == ["  Cell In[2], line 3", "    b = 2"]
    assert "<cell-" not in error.evalue


def test_syntax_error_raised_by_user_code_keeps_its_frames(cells: Cells) -> None:
    error = cells.error("compile('x = )', 'snippet', 'exec')")
    assert error.ename == "SyntaxError"
    assert "Cell In[1], line 1, in <module>" in "\n".join(error.traceback)


def test_kernel_and_asyncio_frames_are_trimmed(cells: Cells) -> None:
    cells.ok("import asyncio\nasync def fail():\n    await asyncio.sleep(0)\n    raise KeyError('k')")
    error = cells.error("await fail()")
    text = "\n".join(error.traceback)
    assert "fastkernel" not in text and "asyncio" not in text.replace("asyncio.sleep", "")
    assert text.startswith("Traceback (most recent call last):\n  Cell In[2], line 1, in <module>")


def test_chained_exceptions_are_trimmed_too(cells: Cells) -> None:
    error = cells.error("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    raise ValueError('bad') from e")
    text = "\n".join(error.traceback)
    assert "The above exception was the direct cause" in text
    assert "ZeroDivisionError" in text and "fastkernel" not in text


@pytest.mark.parametrize("source", ["import sys\nsys.exit(3)", "raise SystemExit(3)"])
def test_system_exit_is_an_error_and_the_interpreter_goes_on(cells: Cells, source: str) -> None:
    error = cells.error(source)
    assert (error.ename, error.evalue) == ("SystemExit", "3")
    assert cells.value("'still here'") == "still here"


def test_exit_and_quit_ask_the_frontend_to_end_the_session(cells: Cells) -> None:
    outcome = cells.ok("exit()\nprint('the cell carries on')\nafter_exit = True")
    assert outcome.payload == [{"source": "ask_exit", "keepkernel": False}]
    assert cells.ns["after_exit"] is True
    assert cells.ok("quit(keep_kernel=True)").payload == [{"source": "ask_exit", "keepkernel": True}]
    assert cells.ok("exit(); exit()").payload == [{"source": "ask_exit", "keepkernel": False}]  # once
    assert cells.ok("1").payload == []


# -- 7. help() -------------------------------------------------------------------------------


def test_help_writes_plain_text_to_stdout(cells: Cells, capsys: pytest.CaptureFixture[str]) -> None:
    cells.ok("def documented():\n    'Does a thing.'\nhelp(documented)")
    out = capsys.readouterr().out
    assert "Help on function documented in module __main__" in out
    assert "Does a thing." in out and "\b" not in out  # plain text: no overstrike bold


# -- 8. measurements -------------------------------------------------------------------------


def test_outcome_measures_wall_time(cells: Cells) -> None:
    outcome = cells.ok("import time\ntime.sleep(0.05)")  # the duration itself is what is measured
    assert 0.05 <= outcome.duration_s < 5


@pytest.mark.skipif(sys.platform == "win32", reason="no resource module")
@pytest.mark.timeout(30)
def test_outcome_measures_peak_rss_growth() -> None:
    # In a fresh process: the peak RSS is a high-water mark, and the test process's may
    # already be above anything this cell allocates.
    script = textwrap.dedent(
        """
        from fastkernel.interpreter.core import Interpreter
        interpreter = Interpreter()
        grown = interpreter.run_cell("block = b'x' * (300 * 2**20)\\ndel block")
        again = interpreter.run_cell("small = [0] * 10")
        print(grown.error, grown.peak_rss_growth_bytes, again.peak_rss_growth_bytes)
        """
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=25)
    error, grown, again = done.stdout.split()
    assert error == "None", done.stderr
    assert int(grown) >= 250 * 2**20
    assert int(again) == 0  # below the earlier peak


def test_after_import_runs_once_the_module_is_imported(tmp_path: Any, monkeypatch: Any) -> None:
    import importlib
    import inspect

    from fastkernel.interpreter.importhooks import after_import

    (tmp_path / "fk_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fk_probe_module", raising=False)
    seen: list[Any] = []
    after_import("fk_probe_module", seen.append)
    assert seen == []  # not imported yet
    module = importlib.import_module("fk_probe_module")
    assert seen == [module] and module.VALUE == 1
    assert type(module.__loader__).__name__ == "SourceFileLoader"  # the wrapper is gone again
    assert inspect.getsource(module) == "VALUE = 1\n"
    after_import("fk_probe_module", seen.append)  # already imported: at once
    assert seen == [module, module]


def test_before_import_runs_before_the_modules_code(tmp_path: Any, monkeypatch: Any) -> None:
    import importlib

    from fastkernel.interpreter.importhooks import after_import, before_import

    (tmp_path / "fk_probe_before.py").write_text("import sys\nSEEN = sys.modules.get('fk_probe_marker')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fk_probe_before", raising=False)
    order: list[str] = []

    def first(module: Any) -> None:
        order.append("before")
        monkeypatch.setitem(sys.modules, "fk_probe_marker", "there")  # what tqdm's check looks for

    before_import("fk_probe_before", first)
    after_import("fk_probe_before", lambda module: order.append("after"))
    module = importlib.import_module("fk_probe_before")
    assert order == ["before", "after"] and module.SEEN == "there"
    before_import("fk_probe_before", first)  # already imported: never
    assert order == ["before", "after"]


def test_uninstall_restores_the_process(cells: Cells) -> None:
    import builtins
    import inspect

    from fastkernel.interpreter.hooks import KernelHelp

    interpreter = cells.interpreter
    interpreter.uninstall()
    assert sys.modules["__main__"] is not interpreter.module
    assert not isinstance(builtins.help, KernelHelp)
    assert inspect.getfile.__module__ == "inspect"
