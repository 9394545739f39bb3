"""Errors as users see them through a real kernel: colours, %xmode modes, chains, groups, %tb.

Texts are asserted after stripping the ANSI codes; that the codes are there, and where, is
asserted separately.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Execution, KernelHarness, ok, result

pytestmark = pytest.mark.timeout(60)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DASHES = "-" * 75
NEEDS_311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups and notes: Python 3.11+")


def strip(text: str) -> str:
    return ANSI.sub("", text)


def failed(kernel: KernelHarness, code: str) -> tuple[Execution, list[str]]:
    """Run ``code``, which must fail; its error output's sections, as sent (ANSI codes kept)."""
    ex = kernel.execute(code)
    assert ex.content["status"] == "error", ex.content
    (error,) = ex.of_type("error")
    assert error["content"]["traceback"] == ex.content["traceback"]
    assert (error["content"]["ename"], error["content"]["evalue"]) == (
        ex.content["ename"],
        ex.content["evalue"],
    )
    return ex, ex.content["traceback"]


def text_of(sections: list[str]) -> str:
    return strip("\n".join(sections))


@pytest.fixture
def mode(kernel: KernelHarness) -> Iterator[object]:
    """Tests that change %xmode put the kernel back in Context, the default."""
    yield None
    ok(kernel, "%xmode Context")


def _define(kernel: KernelHarness) -> int:
    ex = ok(kernel, "def divide_tb(x):\n    '''Divide one by x.'''\n    parts = [1, 2, 3]\n    return 1 / x")
    return int(ex.content["execution_count"])


# -- the default: Context, coloured -----------------------------------------------------


def test_default_context_mode_sections_and_text(kernel: KernelHarness) -> None:
    defined = _define(kernel)
    ex, sections = failed(kernel, "a_tb = 0\ndivide_tb(a_tb)")
    count = ex.content["execution_count"]
    assert (ex.content["ename"], ex.content["evalue"]) == ("ZeroDivisionError", "division by zero")
    # one section per part: header, each frame, the exception line
    assert [strip(s) for s in sections] == [
        f"{DASHES}\nZeroDivisionError                         Traceback (most recent call last)",
        f"Cell In[{count}], line 2\n      1 a_tb = 0\n----> 2 divide_tb(a_tb)\n",
        f"Cell In[{defined}], line 4, in divide_tb\n"
        "      2     '''Divide one by x.'''\n"
        "      3     parts = [1, 2, 3]\n"
        "----> 4     return 1 / x\n"
        "                   ~~^~~\n",
        "ZeroDivisionError: division by zero",
    ]


def test_colours_mark_name_places_functions_arrow_and_carets(kernel: KernelHarness) -> None:
    _define(kernel)
    _, sections = failed(kernel, "divide_tb(0)")
    joined = "\n".join(sections)
    assert "\x1b[1;31mZeroDivisionError\x1b[0m: division by zero" in joined  # name red, message plain
    assert re.search(r"\x1b\[32mCell In\[\d+\], line 4\x1b\[0m, in \x1b\[36mdivide_tb\x1b\[0m", joined)
    assert "\x1b[1;32m----> 4\x1b[0m     return 1 / x" in joined
    assert "\x1b[31m~~\x1b[0m\x1b[1;31m^\x1b[0m\x1b[31m~~\x1b[0m" in joined


def test_kernel_frames_never_shown_library_frames_are(kernel: KernelHarness) -> None:
    _, sections = failed(kernel, "import json\njson.loads('{')")
    text = text_of(sections)
    assert "fastkernel" not in text and "<cell-" not in text
    assert re.search(r"File \S+json/decoder\.py:\d+, in raw_decode", text)
    assert text.endswith(
        "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    # a magic's usage error: its message only, as IPython shows it
    _, sections = failed(kernel, "%xmode NoSuchMode")
    modes = "Minimal, Plain, Context, Verbose, Docs"
    assert text_of(sections) == f"UsageError: %xmode: traceback mode must be one of {modes}, not 'NoSuchMode'"


# -- the modes ------------------------------------------------------------------------------


def test_minimal_is_the_exception_line(kernel: KernelHarness, mode: object) -> None:
    _define(kernel)
    assert ok(kernel, "%xmode minimal").stream_text() == "Exception reporting mode: Minimal\n"
    _, sections = failed(kernel, "divide_tb(0)")
    assert sections == ["\x1b[1;31mZeroDivisionError\x1b[0m: division by zero"]


def test_plain_is_pythons_layout(kernel: KernelHarness, mode: object) -> None:
    defined = _define(kernel)
    ok(kernel, "%xmode Plain")
    ex, sections = failed(kernel, "divide_tb(0)")
    count = ex.content["execution_count"]
    assert [strip(s) for s in sections] == [
        "Traceback (most recent call last):",
        f"  Cell In[{count}], line 1, in <module>\n    divide_tb(0)",
        f"  Cell In[{defined}], line 4, in divide_tb\n    return 1 / x\n           ~~^~~",
        "ZeroDivisionError: division by zero",
    ]


def test_verbose_shows_bounded_values_and_a_failing_repr(kernel: KernelHarness, mode: object) -> None:
    ok(
        kernel,
        "class BadRepr:\n    def __repr__(self):\n        raise RuntimeError('no repr')\n"
        "def verbose_tb(n):\n    big = list(range(10_000))\n    text = 'x' * 5000\n"
        "    odd = BadRepr()\n    return n / 0",
    )
    ok(kernel, "%xmode Verbose")
    _, sections = failed(kernel, "count_tb = 3\nverbose_tb(count_tb)")
    cell_frame, function_frame = (strip(s) for s in sections[1:3])
    assert cell_frame.splitlines()[-1] == "        count_tb = 3"  # the name the failing line uses
    values = function_frame.splitlines()[-4:]
    assert values[0] == "        n = 3"
    assert values[1].startswith("        big = [0, 1, 2, 3, 4, 5, ...]")
    assert values[2].startswith("        text = 'xxxx") and len(values[2]) < 250
    assert values[3] == "        odd = <repr of BadRepr object raised RuntimeError: no repr>"


def test_docs_shows_the_functions_docstring(kernel: KernelHarness, mode: object) -> None:
    _define(kernel)
    ok(kernel, "%xmode docs")
    _, sections = failed(kernel, "divide_tb(0)")
    frame = strip(sections[2]).splitlines()
    assert frame[0].endswith("in divide_tb") and frame[1] == "    Divide one by x."


def test_each_mode_line_count(kernel: KernelHarness, mode: object) -> None:
    _define(kernel)
    counts = {}
    for name in ("Minimal", "Plain", "Context", "Verbose", "Docs"):
        ok(kernel, f"%xmode {name}")
        _, sections = failed(kernel, "divide_tb(0)")
        counts[name] = len("\n".join(sections).splitlines())
    # Minimal: 1; Plain: header, 2 + 3 frame lines, exception; Context: 2-line header, frames of
    # 2 and 5 lines with a blank after each, exception; Verbose: + x and parts; Docs: + docstring
    assert counts == {"Minimal": 1, "Plain": 7, "Context": 12, "Verbose": 14, "Docs": 13}


def test_xmode_without_argument_cycles_and_bad_mode_is_a_usage_error(
    kernel: KernelHarness, mode: object
) -> None:
    ok(kernel, "%xmode Plain")
    assert ok(kernel, "%xmode").stream_text() == "Exception reporting mode: Context\n"
    assert ok(kernel, "%xmode").stream_text() == "Exception reporting mode: Verbose\n"
    ex, _ = failed(kernel, "%xmode loud")
    assert (
        ex.content["ename"] == "UsageError"
        and "Minimal, Plain, Context, Verbose, Docs" in ex.content["evalue"]
    )


# -- chains, groups, notes, syntax errors, recursion, interrupts ---------------------------


def test_chained_exceptions_oldest_first_with_pythons_sentences(kernel: KernelHarness) -> None:
    ex, sections = failed(
        kernel, "try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('bad') from e"
    )
    text = text_of(sections)
    assert (ex.content["ename"], ex.content["evalue"]) == ("ValueError", "bad")
    assert (
        text.index("KeyError: 'k'")
        < text.index("The above exception was the direct cause of the following exception:")
        < text.index("ValueError: bad")
    )
    _, sections = failed(kernel, "try:\n    1 / 0\nexcept ZeroDivisionError:\n    undefined_tb")
    text = text_of(sections)
    assert "During handling of the above exception, another exception occurred:" in text
    assert text.endswith("NameError: name 'undefined_tb' is not defined")
    _, sections = failed(
        kernel, "try:\n    1 / 0\nexcept ZeroDivisionError:\n    raise KeyError('x') from None"
    )
    assert "division by zero" not in text_of(sections)


@NEEDS_311
def test_exception_groups_and_except_star(kernel: KernelHarness) -> None:
    ex, sections = failed(
        kernel,
        "def fail_tb(e):\n    raise e\n"
        "errors = []\nfor e in [ValueError('v1'), TypeError('t1')]:\n"
        "    try:\n        fail_tb(e)\n    except Exception as caught:\n        errors.append(caught)\n"
        "raise ExceptionGroup('two failed', errors)",
    )
    assert (ex.content["ename"], ex.content["evalue"]) == ("ExceptionGroup", "two failed (2 sub-exceptions)")
    text = text_of(sections)
    assert "ExceptionGroup: two failed (2 sub-exceptions)\n+---------------- 1 ----------------\n| " in text
    member = strip(next(s for s in sections if "---- 2 ----" in strip(s)))
    assert "| ----> 2     raise e" in member and member.endswith("| TypeError: t1")
    ex, sections = failed(
        kernel,
        "try:\n    raise ExceptionGroup('g', [ValueError(1), KeyError(2)])\nexcept* ValueError:\n    pass",
    )
    text = text_of(sections)
    assert ex.content["ename"] == "ExceptionGroup" and "| KeyError: 2" in text and "ValueError: 1" not in text


@NEEDS_311
def test_notes_follow_the_exception_line(kernel: KernelHarness) -> None:
    _, sections = failed(
        kernel, "err = ValueError('x')\nerr.add_note('first note')\nerr.add_note('second')\nraise err"
    )
    assert strip(sections[-1]) == "ValueError: x\nfirst note\nsecond"


def test_syntax_and_indentation_errors_caret_under_the_token(kernel: KernelHarness) -> None:
    ex, sections = failed(kernel, "a_syn = 1\nb_syn = (1,,)")
    count = ex.content["execution_count"]
    assert [strip(s) for s in sections] == [
        f"  Cell In[{count}], line 2",
        "    b_syn = (1,,)",
        "               ^",
        "SyntaxError: invalid syntax",
    ]
    assert "\x1b[1;31m^\x1b[0m" in sections[2] and sections[3].startswith("\x1b[1;31mSyntaxError")
    ex, sections = failed(kernel, "if True:\n    a_ind = 1\n      b_ind = 2")
    assert ex.content["ename"] == "IndentationError"
    assert [strip(s) for s in sections][1:] == [
        "    b_ind = 2",
        "    ^",
        "IndentationError: unexpected indent",
    ]
    # found by the compiler after parsing: Python gives no text, the line comes from the cell
    _, sections = failed(kernel, "x_ret = 1\nreturn x_ret")
    assert [strip(s) for s in sections][1:] == [
        "    return x_ret",
        "    ^^^^^^^^^^^^",
        "SyntaxError: 'return' outside function",
    ]


def test_recursion_is_folded_with_a_count(kernel: KernelHarness) -> None:
    _, sections = failed(kernel, "def deep_tb(n):\n    return deep_tb(n + 1)\ndeep_tb(0)")
    text = text_of(sections)
    assert re.search(r"\[\.\.\. repeated \d{3} more times\]", text)
    assert text.count("in deep_tb") == 1 and len(text.splitlines()) < 25
    _, sections = failed(
        kernel, "def ping_tb(n):\n    return pong_tb(n)\ndef pong_tb(n):\n    return ping_tb(n)\nping_tb(0)"
    )
    text = text_of(sections)
    assert re.search(r"\[\.\.\. the 2 frames above repeated \d{3} more times\]", text)


def test_keyboard_interrupt_is_brief(kernel: KernelHarness) -> None:
    ok(kernel, "def inner_ki():\n    raise KeyboardInterrupt\ndef outer_ki():\n    inner_ki()")
    _, sections = failed(kernel, "outer_ki()")
    assert len(sections) == 3 and strip(sections[1]).startswith("Cell In[")
    assert "in inner_ki" in strip(sections[1]) and strip(sections[2]) == "KeyboardInterrupt: "  # as IPython


def test_real_interrupt_shows_the_line_that_was_running(fresh_kernel: KernelHarness) -> None:
    msg_id = fresh_kernel.kc.execute("import time\nprint('go', flush=True)\ntime.sleep(30)")
    fresh_kernel.wait_for_iopub(
        lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream", timeout=10
    )
    fresh_kernel.process.interrupt()
    reply = fresh_kernel.get_reply(msg_id, timeout=10)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    text = text_of(reply["content"]["traceback"])
    assert "----> 3 time.sleep(30)" in text and text.endswith("KeyboardInterrupt: ")


# -- %tb, colours off, library frames folded ------------------------------------------------------


def test_tb_shows_the_last_error_again_in_any_mode(fresh_kernel: KernelHarness) -> None:
    first = fresh_kernel.execute("%tb")
    assert (
        first.content["status"] == "ok" and first.stream_text("stderr") == "No traceback available to show.\n"
    )
    _, sections = failed(fresh_kernel, "{}['gone']")
    again = ok(fresh_kernel, "%tb")
    (error,) = again.of_type("error")
    assert error["content"]["traceback"] == sections
    assert (error["content"]["ename"], error["content"]["evalue"]) == ("KeyError", "'gone'")
    (minimal,) = ok(fresh_kernel, "%tb Minimal").of_type("error")
    assert [strip(s) for s in minimal["content"]["traceback"]] == ["KeyError: 'gone'"]
    assert result(ok(fresh_kernel, "import sys\nsys.last_value.args")) == "('gone',)"


def test_no_color_environment_and_colors_magic(kernel: KernelHarness) -> None:
    with KernelHarness.start(env={**os.environ, "NO_COLOR": "1"}) as plain:
        _, sections = failed(plain, "1 / 0")
        assert "\x1b[" not in "".join(sections) and sections[-1] == "ZeroDivisionError: division by zero"
        ok(plain, "%colors Neutral")
        _, sections = failed(plain, "1 / 0")
        assert "\x1b[1;31m" in sections[-1]
    ok(kernel, "%colors NoColor")
    try:
        _, sections = failed(kernel, "1 / 0")
        assert "\x1b[" not in "".join(sections)
    finally:
        ok(kernel, "%colors auto")


def test_configuration_sets_mode_colours_and_folds_library_frames() -> None:
    argv = ("--xmode=Plain", "--traceback-colors=off", "--hide-library-frames")
    with KernelHarness.start(*argv) as configured:
        ok(configured, "import json\ndef hook_tb(d):\n    raise LookupError('in hook')")
        _, sections = failed(configured, "json.loads('{\"a\": 1}', object_hook=hook_tb)")
        assert "\x1b[" not in "".join(sections) and sections[0] == "Traceback (most recent call last):"
        assert sections[2] == "  [... 3 library frames hidden]"
        assert sections[3].startswith("  Cell In[1], line 3, in hook_tb")


def test_nbconvert_html_shows_the_colours(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    exporter = pytest.importorskip("nbconvert").HTMLExporter()
    from tests.kernels import KERNEL_NAME

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("def f_html(x):\n    return 1 / x\n\nf_html(0)")]
    )
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=30,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    html, _ = exporter.from_notebook_node(nb)
    assert '<span class="ansi-red-intense-fg ansi-bold">ZeroDivisionError</span>: division by zero' in html
    assert (
        '<span class="ansi-green-fg">Cell In[1], line 2</span>, in <span class="ansi-cyan-fg">f_html</span>'
        in html
    )
    assert '<span class="ansi-green-intense-fg ansi-bold">----&gt; 4</span> f_html(0)' in html
    assert "\x1b[" not in html


def test_the_renderer_is_imported_by_the_first_error_not_at_start(fresh_kernel: KernelHarness) -> None:
    check = "import sys\nsorted(m for m in sys.modules if m.startswith('fastkernel.interpreter.tb'))"
    assert result(ok(fresh_kernel, check)) == "[]"
    failed(fresh_kernel, "1 / 0")
    assert (
        result(ok(fresh_kernel, check))
        == "['fastkernel.interpreter.tbframes', 'fastkernel.interpreter.tbrender']"
    )
