"""%time, %%time, %timeit and %%timeit, printing what IPython prints."""

from __future__ import annotations

import ast
import gc
import itertools
import linecache
import math
import os
import re
import time
from collections.abc import Callable
from typing import Any, cast

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, cell_magic, line_magic
from fastkernel.interpreter.magics.transform import strip_leading_indent

_OPTION = re.compile(r"\s*-(?:([nrp])\s*(\d+)|([oq]+))(?=\s|$)")
_UNITS = ("s", "ms", "\u00b5s", "ns")


def format_time(seconds: float, precision: int = 3) -> str:
    """``1.23 ms``, ``456 ns``; past a minute ``2min 5s``."""
    if seconds >= 60:
        minutes, secs = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        parts = [f"{int(hours)}h"] if hours else []
        return " ".join([*parts, f"{int(minutes)}min", f"{secs:.0f}s"])
    order = 3 if seconds <= 0 else min(max(-(math.floor(math.log10(seconds)) // 3), 0), 3)
    if order > 0 and float(f"{seconds * 1000**order:.{precision}g}") >= 1000:
        order -= 1  # 999.7 ns rounds to 1 µs, not to "1e+03 ns"
    return f"{seconds * 1000**order:.{precision}g} {_UNITS[order]}"


def _cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of this process; getrusage has microseconds, os.times ticks."""
    try:
        import resource
    except ImportError:  # Windows
        times = os.times()
        return times.user, times.system
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _timed(magics: Magics, code: str, offset: int) -> object:
    wall = time.perf_counter()
    user, system = _cpu()
    try:
        return magics.run_code(code, offset)
    finally:
        user_end, system_end = _cpu()
        user, system = user_end - user, system_end - system
        print(
            f"CPU times: user {format_time(user)}, sys: {format_time(system)}, "
            f"total: {format_time(user + system)}"
        )
        print(f"Wall time: {format_time(time.perf_counter() - wall)}")


@line_magic("time", expand=False)
def time_line(magics: Magics, line: str) -> object:
    """Run a statement or expression once; print CPU and wall time; return its value."""
    return _timed(magics, line, max(magics.place.lineno - 1, 0))


@cell_magic("time", expand=False)
def time_cell(magics: Magics, line: str, cell: str) -> object:
    """Run the cell once; print CPU and wall time; return its last expression's value."""
    if line.strip():
        raise UsageError("%%time takes no arguments: put the code on the lines below it")
    return _timed(magics, cell, magics.place.lineno)


class TimeitResult:
    """What ``%timeit -o`` returns: seconds per loop of each run, and their statistics."""

    def __init__(self, loops: int, repeat: int, all_runs: list[float], compile_time: float, precision: int):
        self.loops = loops
        self.repeat = repeat
        self.all_runs = all_runs  # seconds for ``loops`` loops, per run
        self.compile_time = compile_time
        self._precision = precision
        self.timings = [run / loops for run in all_runs]
        self.best = min(self.timings)
        self.worst = max(self.timings)

    @property
    def average(self) -> float:
        return math.fsum(self.timings) / len(self.timings)

    @property
    def stdev(self) -> float:
        mean = self.average
        return math.sqrt(math.fsum((t - mean) ** 2 for t in self.timings) / len(self.timings))

    def __str__(self) -> str:
        fmt = lambda t: format_time(t, self._precision)  # noqa: E731
        runs = "run" if self.repeat == 1 else "runs"
        loops = "loop" if self.loops == 1 else "loops"
        return (
            f"{fmt(self.average)} \u00b1 {fmt(self.stdev)} per loop (mean \u00b1 std. dev. of "
            f"{self.repeat} {runs}, {self.loops:,} {loops} each)"
        )

    def __repr__(self) -> str:
        return f"<TimeitResult : {self}>"


def _options(line: str) -> tuple[dict[str, int], str]:
    options = {"n": 0, "r": 7, "p": 3, "o": 0, "q": 0}
    pos = 0
    while (match := _OPTION.match(line, pos)) is not None:
        if match.group(1):
            options[match.group(1)] = int(match.group(2))
        else:
            options.update(dict.fromkeys(match.group(3), 1))
        pos = match.end()
    if options["r"] < 1 or options["p"] < 1:
        raise UsageError("%timeit: -r and -p must be at least 1")
    return options, line[pos:].strip()


# timeit's template, compiled as part of the calling cell (see _timing_function)
_TEMPLATE = """
def inner(_it, _timer):
    pass  # setup
    _t0 = _timer()
    for _i in _it:
        pass  # statement
    _t1 = _timer()
    return _t1 - _t0
"""


def _timing_function(magics: Magics, stmt: str, setup: str, stmt_line: int) -> Callable[..., float]:
    """timeit's ``inner(iterations, timer)`` for ``stmt``, compiled under the calling cell's file
    name, the statement on its own lines there (``stmt_line``: its first) and the template and
    ``setup`` on the magic's line: tracebacks show the cell's lines, and breakpoints in the
    timed code (``breakpoint()``, pdb's ``break``, the visual debugger's) bind to the cell."""
    interpreter = magics.interpreter
    filename, magic_line = magics.place.filename, magics.place.lineno
    if filename is None:  # called outside a cell: the statement gets a file of its own
        filename, stmt_line, magic_line = interpreter.sources.register(stmt, "Magic code"), 1, 1
    module = ast.parse(_TEMPLATE)
    for node in ast.walk(module):
        if isinstance(node, (ast.stmt, ast.expr)):
            node.lineno = node.end_lineno = magic_line
    inner = module.body[0]
    assert isinstance(inner, ast.FunctionDef) and isinstance(inner.body[2], ast.For)
    loop = inner.body[2]
    flags = interpreter.future_flags

    def parse(code: str, line: int) -> list[ast.stmt]:
        code = strip_leading_indent(code)  # an indented body ran under timeit's own template too
        tree = compile("\n" * (line - 1) + code, filename, "exec", ast.PyCF_ONLY_AST | flags, True)
        _shift_to_source(tree, code, filename, line)
        return tree.body

    inner.body[0:1] = parse(setup, magic_line) or [ast.Pass(lineno=magic_line, col_offset=0)]
    loop.body[0:1] = parse(stmt, stmt_line) or loop.body[0:1]
    ast.fix_missing_locations(module)
    namespace, local = magics.user_namespaces()
    defined: dict[str, Any] = {}
    exec(compile(module, filename, "exec", flags, dont_inherit=True), namespace | (local or {}), defined)
    return cast("Callable[..., float]", defined["inner"])


def _shift_to_source(tree: ast.Module, code: str, filename: str, line: int) -> None:
    """Columns of one-line ``code`` (``%timeit STMT``, ``%%timeit SETUP``) where it stands on
    its line of the cell, so that a traceback's carets point at it."""
    if "\n" in code.strip():
        return
    text, code = linecache.getline(filename, line).rstrip(), code.strip()
    if not text.endswith(code):  # the magic's line ends with the code
        return
    start = len(text) - len(code)
    shift = len(text[:start].encode("utf-8"))  # ast columns count UTF-8 bytes
    for node in ast.walk(tree):
        if isinstance(node, (ast.stmt, ast.expr)) and node.lineno == line:
            node.col_offset += shift
            if node.end_lineno == line and node.end_col_offset is not None:
                node.end_col_offset += shift


def _run(inner: Callable[..., float], number: int) -> float:
    """Seconds for ``number`` loops, the garbage collector off as timeit has it."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return inner(itertools.repeat(None, number), time.perf_counter)
    finally:
        if collecting:
            gc.enable()


def _timeit(
    magics: Magics, stmt: str, setup: str, options: dict[str, int], stmt_line: int
) -> TimeitResult | None:
    if not stmt.strip():
        raise UsageError("%timeit needs a statement to time")
    started = time.perf_counter()
    inner = _timing_function(magics, stmt, setup, stmt_line)
    compile_time = time.perf_counter() - started
    number = options["n"]
    if number < 1:  # the first power of ten that takes 0.2 s, as IPython picks it
        for power in range(10):
            number = 10**power
            if _run(inner, number) >= 0.2:
                break
    runs = [_run(inner, number) for _ in range(options["r"])]
    result = TimeitResult(number, options["r"], runs, compile_time, options["p"])
    if not options["q"]:
        print(result)
        if result.best > 0 and result.worst > 4 * result.best and result.worst > 1e-6:
            print(
                f"The slowest run took {result.worst / result.best:.2f} times longer than the fastest. "
                "This could mean that an intermediate result is being cached."
            )
    return result if options["o"] else None


@line_magic("timeit", expand=False)
def timeit_line(magics: Magics, line: str) -> TimeitResult | None:
    """Time a statement over many loops: ``-n`` loops, ``-r`` runs, ``-p`` digits, ``-q``, ``-o``."""
    options, stmt = _options(line)
    return _timeit(magics, stmt, "", options, max(magics.place.lineno, 1))


@cell_magic("timeit", expand=False)
def timeit_cell(magics: Magics, line: str, cell: str) -> TimeitResult | None:
    """Time the cell; the rest of the ``%%timeit`` line is setup code, run before each run."""
    options, setup = _options(line)
    return _timeit(magics, cell, setup, options, magics.place.lineno + 1)
