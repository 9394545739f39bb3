"""Traceback rendering on odd exceptions: what a user sees never fails, and stays bounded."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.tracebacks import TracebackStyle

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def interp() -> Iterator[Interpreter]:
    interpreter = Interpreter(traceback_style=TracebackStyle(colors="off"))
    interpreter.install_as_main()
    try:
        yield interpreter
    finally:
        interpreter.uninstall()


def error_text(interp: Interpreter, source: str, mode: str = "Context") -> tuple[Any, str]:
    interp.traceback_style.mode = mode
    outcome = interp.run_cell(source, "Cell In[1]")
    assert outcome.error is not None
    return outcome.error, "\n".join(outcome.error.traceback)


def test_an_exception_whose_str_raises_is_still_shown(interp: Interpreter) -> None:
    error, text = error_text(
        interp, "class Odd(Exception):\n    def __str__(self):\n        raise ValueError\nraise Odd()"
    )
    assert error.ename == "Odd" and text.endswith("Odd: <exception str() failed>")


def test_a_cycle_of_contexts_ends(interp: Interpreter) -> None:
    source = "a, b = KeyError('a'), KeyError('b')\na.__context__, b.__context__ = b, a\nraise a"
    _, text = error_text(interp, source)
    assert text.count("During handling") == 1 and text.endswith("KeyError: 'a'")


def test_notes_that_are_not_a_list_are_said_so(interp: Interpreter) -> None:
    _, text = error_text(interp, "e = ValueError('v')\ne.__notes__ = 'oops'\nraise e", mode="Minimal")
    assert text == "ValueError: v\n<__notes__ is not a list: 'oops'>"


def test_a_loader_that_fails_to_give_source_leaves_the_frame_without_lines(interp: Interpreter) -> None:
    source = (
        "class BadLoader:\n"
        "    def get_source(self, name):\n"
        "        raise RuntimeError('loader broken')\n"
        "g = {'__name__': 'fakemod', '__loader__': BadLoader()}\n"
        "exec(compile('def boom():\\n    raise KeyError(1)', '/nonexistent/fakemod.py', 'exec'), g)\n"
        "g['boom']()"
    )
    error, text = error_text(interp, source, mode="Plain")
    assert error.ename == "KeyError"
    assert 'File "/nonexistent/fakemod.py", line 2, in boom\nKeyError: 1' in text


def test_notes_that_raise_are_said_so(interp: Interpreter) -> None:
    source = (
        "class Noted(Exception):\n    @property\n    def __notes__(self):\n        raise RuntimeError\n"
        "raise Noted('n')"
    )
    error, text = error_text(interp, source, mode="Minimal")
    assert error.ename == "Noted" and text == "Noted: n\n<__notes__ raised RuntimeError>"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups: Python 3.11+")
def test_wide_and_deep_groups_are_bounded(interp: Interpreter) -> None:
    _, text = error_text(
        interp, "raise ExceptionGroup('wide', [ValueError(i) for i in range(20)])", mode="Minimal"
    )
    assert "---- 15 ----" in text and "---- 16 ----" not in text and "... and 5 more exceptions" in text
    source = "g = ValueError('leaf')\nfor i in range(15):\n    g = ExceptionGroup(f'level {i}', [g])\nraise g"
    _, text = error_text(interp, source, mode="Minimal")
    assert "exception groups nested deeper than 10" in text and "leaf" not in text


def test_verbose_bounds_the_number_of_variables(interp: Interpreter) -> None:
    assigns = "\n".join(f"    v{i} = {i}" for i in range(30))
    _, text = error_text(interp, f"def many():\n{assigns}\n    raise KeyError\nmany()", mode="Verbose")
    assert "        v19 = 19" in text and "v20 =" not in text and "[... 10 more variables]" in text


def test_hidden_library_frames_keep_the_raising_ones(interp: Interpreter) -> None:
    interp.traceback_style.hide_libraries = True
    _, text = error_text(interp, "import json\njson.loads('{')", mode="Plain")
    assert "library frames hidden" not in text  # no user frame after them: all shown
    assert text.count("json/") == 3
