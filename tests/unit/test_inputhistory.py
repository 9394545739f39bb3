"""History ranges and the interpreter's own input history (no kernel, no history file)."""

from __future__ import annotations

import pytest

from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.inputhistory import parse_ranges, rows_for
from fastkernel.interpreter.magics.transform import strip_leading_indent


@pytest.mark.parametrize(
    ("text", "triples"),
    [
        ("4", [(0, 4, 5)]),
        ("4-6", [(0, 4, 7)]),
        ("4:7", [(0, 4, 7)]),
        ("1-2 5", [(0, 1, 3), (0, 5, 6)]),
        ("~1/", [(-1, 1, None)]),
        ("~2/3-5", [(-2, 3, 6)]),
        ("3/7", [(3, 7, 8)]),
        ("~3/4-~1/2", [(-3, 4, None), (-2, 1, None), (-1, 1, 3)]),
    ],
)
def test_ranges_are_ipythons(text: str, triples: list[tuple[int, int, int | None]]) -> None:
    assert parse_ranges(text) == triples


@pytest.mark.parametrize("text", ["", "x", "1-", "-3", "1-x", "~/", "a.py"])
def test_what_is_not_a_range(text: str) -> None:
    assert parse_ranges(text) is None


def test_without_a_store_the_history_is_this_sessions_in() -> None:
    interp = Interpreter()
    for count, source in enumerate(["a = 1", "b = 2\nb", "a + b"], start=1):
        assert interp.run_cell(source, count=count, store_history=True).error is None
    history = interp.input_history
    assert history.range() == [[1, 1, "a = 1"], [1, 2, "b = 2\nb"], [1, 3, "a + b"]]
    assert history.tail(1, output=True) == [[1, 3, ["a + b", None]]]  # no on_result: no Out
    assert history.search("*b*", n=1) == [[1, 3, "a + b"]]
    assert history.range(-1) == []  # no earlier session
    assert rows_for(history, "1 3") == [[1, 1, "a = 1"], [1, 3, "a + b"]]


def test_leading_indentation_is_stripped_from_lines_that_have_it() -> None:
    assert strip_leading_indent("\n    a = 1\n    if a:\n        b = 2\n") == "\na = 1\nif a:\n    b = 2\n"
    assert strip_leading_indent("\ta\n  b") == "a\n  b"  # a line without the prefix stays as it is
    source = "a = 1\n    b"
    assert strip_leading_indent(source) is source
