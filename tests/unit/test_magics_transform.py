"""Magic syntax rewritten before compile, is_complete on it, and magics run in-process (no kernel)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastkernel.interpreter.completeness import is_complete
from fastkernel.interpreter.core import CellOutcome, Interpreter
from fastkernel.interpreter.introspect import describe
from fastkernel.interpreter.magics.system import expand
from fastkernel.interpreter.magics.timing import format_time
from fastkernel.interpreter.magics.transform import MAGICS, transform_cell
from tests.unit.test_interpreter import Cells as InterpreterCells

M = MAGICS

REWRITTEN = [
    ("!echo hi", f"{M}.shell('echo hi')"),
    ("!!ls", f"{M}.getoutput('ls')"),
    ("x = !printf 'a'", f"x = {M}.getoutput(\"printf 'a'\")"),
    ("a, b = %foo x y", f"a, b = {M}.run_line('foo', 'x y')"),
    ("%pwd", f"{M}.run_line('pwd', '')"),
    ("%time  f(1) ", f"{M}.run_line('time', 'f(1)')"),
    ("len?", f"{M}.help('len', 0)"),
    ("?len", f"{M}.help('len', 0)"),
    ("os.path.join??", f"{M}.help('os.path.join', 1)"),
    ("??os", f"{M}.help('os', 1)"),
    ("%timeit?", f"{M}.help('%timeit', 0)"),
    ("if x:\n    !ls\n    %cd /tmp", f"if x:\n    {M}.shell('ls')\n    {M}.run_line('cd', '/tmp')"),
    ("%time \\\n  1 + 1\nprint(2)", f"{M}.run_line('time', '1 + 1')\n\nprint(2)"),
    ("%%bash\necho hi", f"{M}.run_cell('bash', '', 'echo hi\\n', 1)\n"),
    ("\n\n%%time x\n1", f"\n\n{M}.run_cell('time', 'x', '1\\n', 3)\n"),
    ("%%x\n", f"{M}.run_cell('x', '', '', 1)\n"),
]

UNCHANGED = [
    "x = 1",
    's = "%d" % 3',
    "x = 1  # what?",
    'a = """\n!no\n%no\nno?\n"""',
    "f(1,\n%2)",
    "d = {\n!x\n}",
    "x = 1 + \\\n%2",
    "s = 'it''s \\\n%x'",
    "x != y",
    "? ",
]


@pytest.mark.parametrize("source, expected", REWRITTEN)
def test_rewrites(source: str, expected: str) -> None:
    assert transform_cell(source) == expected


@pytest.mark.parametrize("source", UNCHANGED)
def test_leaves_python_and_strings_alone(source: str) -> None:
    assert transform_cell(source) is source


def test_line_numbers_are_kept() -> None:
    source = "import os\nif True:\n    !echo a \\\n      b\n    y = 1\nz = %pwd\nos?\n1/0"
    rewritten = transform_cell(source)
    assert rewritten.count("\n") == source.count("\n")
    assert rewritten.split("\n")[-1] == "1/0"


def test_expand_braces_and_dollars() -> None:
    ns = {"x": 3, "name": "world", "p": Path("/tmp/f")}
    assert expand("echo {x + 1} $name", ns) == "echo 4 world"
    assert expand("echo '$name' {{x}} $$", ns) == "echo '$name' {x} $"
    assert expand("echo $HOME {nope} awk '{print $1}'", ns) == "echo $HOME {nope} awk '{print $1}'"
    assert expand("cp $p.name $p.bak", ns) == "cp f /tmp/f.bak"
    assert expand("echo $x", ns, {"x": "local"}) == "echo local"


def test_format_time() -> None:
    assert format_time(0.5) == "500 ms"
    assert format_time(2.5e-5) == "25 \u00b5s"
    assert format_time(1.5e-9) == "1.5 ns"
    assert format_time(0) == "0 ns"
    assert format_time(9.997e-7) == "1 \u00b5s"
    assert format_time(125) == "2min 5s"


@pytest.mark.parametrize(
    "source, status",
    [
        ("%%bash\necho", ("incomplete", "")),
        ("%%bash\necho\n", ("incomplete", "")),
        ("%%bash\necho\n\n", ("complete", "")),
        ("%%bash\n  echo", ("incomplete", "  ")),
        ("!ls", ("complete", "")),
        ("x = !ls", ("complete", "")),
        ("%time x = 1", ("complete", "")),
        ("obj?", ("complete", "")),
        ("len??", ("complete", "")),
        ("if x:\n    !ls", ("incomplete", "    ")),
        ("if x:\n    !ls\n", ("complete", "")),
        ("%pwd\nfor i in x:", ("incomplete", "    ")),
    ],
)
def test_is_complete_knows_magics(source: str, status: tuple[str, str]) -> None:
    assert is_complete(source) == status


@pytest.mark.parametrize(
    "source", ["%%bash\necho", "%%bash\necho\n\n", "!ls", "x = !ls", "%time x", "obj?", "if x:\n    !ls"]
)
def test_is_complete_status_matches_ipython(source: str) -> None:
    inputtransformer2 = pytest.importorskip("IPython.core.inputtransformer2")
    assert is_complete(source)[0] == inputtransformer2.TransformerManager().check_complete(source)[0]


# -- in-process runs -------------------------------------------------------------------


class Cells(InterpreterCells):
    """Cells run as a notebook runs them: each one is In[n]."""

    def run(self, source: str, **kwargs: Any) -> CellOutcome:
        return super().run(source, count=self.count + 1, store_history=True, **kwargs)


@pytest.fixture
def cells() -> Iterator[Cells]:
    displayed: list[Any] = []
    interpreter = Interpreter(on_result=displayed.append)
    interpreter.install_as_main()
    cwd = os.getcwd()
    try:
        yield Cells(interpreter, displayed)
    finally:
        os.chdir(cwd)
        interpreter.uninstall()


def test_shell_output_and_value(cells: Cells, capsys: pytest.CaptureFixture[str]) -> None:
    cells.ok("n = 2\n!echo hi {n * 2}")
    assert capsys.readouterr().out == "hi 4\r\n"  # a pseudo-terminal, as in ipykernel
    lines = cells.value("x = !printf 'a\\nb\\n'; echo err >&2\nx")
    assert lines == ["a", "b", "err"] and lines.n == "a\nb\nerr" and lines.s == "a b err"
    assert cells.value("def f(n):\n    x = !echo {n + 1}\n    return x\nf(4)") == ["5"]
    cells.ok("!exit 3")
    assert cells.interpreter.namespace["_exit_code"] == 3
    assert cells.interpreter.magics.system("exit 4") == 4
    assert cells.interpreter.magics.getoutput("echo a") == ["a"]


def test_in_keeps_the_raw_source_and_tracebacks_the_users_lines(cells: Cells) -> None:
    outcome = cells.run("%pwd\n!true\nx = 1\n1/0")
    assert cells.interpreter.namespace["In"][1] == "%pwd\n!true\nx = 1\n1/0"
    assert outcome.error.ename == "ZeroDivisionError"
    assert "Cell In[1], line 4" in "\n".join(outcome.error.traceback)
    outcome = cells.run("%%time\nx = 1\n1/0")
    assert "Cell In[2], line 3" in "\n".join(outcome.error.traceback)


def test_help_puts_a_page_payload(cells: Cells, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = cells.ok("def f(a, b=2):\n    'Add.'\n    return a\nf?")
    (page,) = outcome.payload
    assert page["source"] == "page" and page["start"] == 0
    text = page["data"]["text/plain"]
    for field in (r"Signature: +f\(a, b=2\)", "Type: +function", "Docstring: +Add."):
        assert re.search(f"^{field}$", text, re.M), (field, text)
    (page,) = cells.ok("f??").payload
    assert "return a" in page["data"]["text/plain"]
    assert "File:" in page["data"]["text/plain"] and "Cell In[1]" in page["data"]["text/plain"]
    cells.ok("nope?")
    assert capsys.readouterr().out == "Object `nope` not found.\n"


def test_describe() -> None:
    assert re.search(r"^Signature: +len\(obj, /\)$", describe(len), re.M)
    text = describe([1, 2], 1)
    for field in (r"String form: +\[1, 2\]", "Length: +2", "Type: +list"):
        assert re.search(f"^{field}$", text, re.M), (field, text)


def test_unknown_magic_is_a_usage_error(cells: Cells) -> None:
    error = cells.run("%nosuch 1").error
    assert error.ename == "UsageError"
    assert error.evalue.startswith("fastkernel has no magic %nosuch")
    assert "%timeit" in error.evalue and "%%capture" in error.evalue
    assert cells.run("%%nosuch\nx").error.evalue.startswith("fastkernel has no magic %%nosuch")
    assert cells.run("x = 1\n%%time\n1").error.ename == "UsageError"


def test_magics_as_functions(cells: Cells, tmp_path: Path) -> None:
    magics = cells.interpreter.magics
    lines, cell_names = magics.names()
    assert {"time", "timeit", "cd", "pwd", "env", "pip", "run", "reset"} <= set(lines)
    assert {"time", "timeit", "capture", "writefile", "bash", "html"} <= set(cell_names)
    assert magics.run_line("pwd", "") == os.getcwd()
    magics.run_cell("writefile", str(tmp_path / "f.txt"), "hello\n")
    assert (tmp_path / "f.txt").read_text() == "hello\n"


def test_time_timeit_reset_run(cells: Cells, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cells.value("%time 6 * 7") == 42
    assert "CPU times: user" in capsys.readouterr().out
    result = cells.value("%timeit -o -n 5 -r 3 sum(range(10))")
    assert result.loops == 5 and result.repeat == 3 and len(result.timings) == 3
    assert "per loop (mean \u00b1 std. dev. of 3 runs, 5 loops each)" in capsys.readouterr().out
    script = tmp_path / "script.py"
    script.write_text("import sys\nargs = sys.argv[1:]\nname = __name__\n")
    cells.ok(f"%run {script} a 'b c'")
    ns = cells.interpreter.namespace
    assert ns["args"] == ["a", "b c"] and ns["name"] == "__main__"
    assert sys.modules["__main__"] is cells.interpreter.module
    cells.ok("%reset -f")
    assert "args" not in ns and "In" in ns and ns["In"] == [""]
    assert cells.interpreter.magics.user_variables() == []


def test_timeit_picks_the_loop_count(cells: Cells, capsys: pytest.CaptureFixture[str]) -> None:
    cells.ok("import time\n%timeit -r 1 time.sleep(0.21)")
    assert "per loop (mean \u00b1 std. dev. of 1 run, 1 loop each)" in capsys.readouterr().out


def test_timeit_code_is_the_cells_own(cells: Cells, capsys: pytest.CaptureFixture[str]) -> None:
    # An error in the timed code shows the cell's line (it was "<timeit-src>")
    error = cells.run("%%timeit -n1 -r1 y = 1\nz = y\nz / missing\n").error
    assert error is not None and error.ename == "NameError"
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))
    assert "Cell In[1], line 3, in inner" in shown and "<timeit-src>" not in shown
    error = cells.run("top = 0\n%timeit -n1 -r1 1 / top").error
    assert error is not None and "Cell In[2], line 2" in re.sub(
        r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback)
    )
    # the timed code runs in a function of its own, as under timeit: its names stay there
    cells.ok("%%timeit -n3 -r1 calls = []\ncalls.append(1)\nlooped = len(calls)\n")
    assert "looped" not in cells.interpreter.namespace
    # an indented body runs, as under timeit's template
    cells.ok("%%timeit -n1 -r1\n    a = 1\n    b = a + 1\n")
    assert "1 loop each" in capsys.readouterr().out


def test_conda_missing_is_a_clear_error(cells: Cells, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    error = cells.run("%conda install numpy").error
    assert error.ename == "UsageError" and "conda was not found" in error.evalue


def test_a_magic_that_awaits_inside_a_function_sees_its_locals(cells: Cells) -> None:
    # Interpreter.run_code runs magic code with the caller's locals, also when it awaits.
    source = "import asyncio\ndef g():\n    x = 3\n    y = %time await asyncio.sleep(0, x)\n    return y\ng()"
    assert cells.value(source) == 3
