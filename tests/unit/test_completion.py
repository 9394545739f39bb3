"""Completion (jedi, bounded, with a namespace fallback) and inspection, without a kernel."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastkernel.interpreter import completion, livenames
from fastkernel.interpreter.completion import Completer, line_and_column
from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.deadline import DeadlineExceeded, call_with_deadline
from fastkernel.interpreter.introspect import describe, inspect_reply, name_at_cursor


class FakeMagics:
    def names(self) -> tuple[list[str], list[str]]:
        return (["time", "timeit", "cd"], ["time", "writefile"])


@pytest.fixture
def interpreter() -> Iterator[Interpreter]:
    interp = Interpreter()
    interp.install_as_main()
    ok = interp.run_cell(
        textwrap.dedent(
            """\
            import os
            def f(a, bee=1, bar=2):
                'Add things.'
                return a
            class Thing:
                'A thing.'
                def __init__(self, size=1):
                    self.size = size
            thing = Thing()
            d = {'alpha': 1, 'beta': 2}
            """
        ),
        "Cell In[1]",
    )
    assert ok.error is None
    try:
        yield interp
    finally:
        interp.uninstall()


@pytest.fixture
def completer(interpreter: Interpreter) -> Completer:
    return Completer(interpreter.namespace, magics=lambda: FakeMagics(), timeout=5.0)


def complete(c: Completer, code: str, cursor: int | None = None) -> dict[str, Any]:
    reply = c.reply(code, len(code) if cursor is None else cursor)
    assert reply["status"] == "ok"
    matches = reply["matches"]
    assert len(matches) == len(set(matches)), f"duplicates in {matches}"
    types = reply["metadata"]["_jupyter_types_experimental"]
    assert [t["text"] for t in types] == matches
    for t in types:
        assert (t["start"], t["end"]) == (reply["cursor_start"], reply["cursor_end"])
        assert set(t) == {"start", "end", "text", "type", "signature"}
    return reply


# -- positions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cursor", "expected"),
    [
        ("abc", 2, (1, 2)),
        ("a\nbc", 4, (2, 2)),
        ("a\r\nbc", 5, (2, 2)),
        ("a\rbc", 3, (2, 1)),
        ("é\nñé", 4, (2, 2)),
        ("😀\n😀x", 4, (2, 2)),  # astral characters are one code point, as in the protocol
        ("a\x0cb", 3, (1, 3)),  # a form feed does not end a line
    ],
)
def test_line_and_column_count_code_points(code: str, cursor: int, expected: tuple[int, int]) -> None:
    assert line_and_column(code, cursor) == expected


# -- jedi ------------------------------------------------------------------------


def test_attributes(completer: Completer) -> None:
    reply = complete(completer, "os.pa")
    assert completer.last_source == "jedi"
    assert {"path", "pathsep", "pardir"} <= set(reply["matches"])
    assert (reply["cursor_start"], reply["cursor_end"]) == (3, 5)


def test_module_names_in_imports_without_duplicates(completer: Completer) -> None:
    reply = complete(completer, "import os.pa")
    assert reply["matches"] == ["path"]
    assert reply["cursor_start"] == len("import os.")
    assert "json" in complete(completer, "import jso")["matches"]
    assert "join" in complete(completer, "from os.path import jo")["matches"]


def test_keyword_arguments_inside_a_call(completer: Completer) -> None:
    reply = complete(completer, "f(1, b")
    assert {"bee=", "bar="} <= set(reply["matches"])
    assert reply["cursor_start"] == 5
    types = {t["text"]: t["type"] for t in reply["metadata"]["_jupyter_types_experimental"]}
    assert types["bee="] == "param"


def test_dictionary_keys(completer: Completer) -> None:
    reply = complete(completer, "d['al")
    assert reply["matches"] == ["'alpha'"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (2, 5)


def test_file_paths_in_strings(completer: Completer, tmp_path: Path) -> None:
    (tmp_path / "notes_ñ.txt").write_text("x")
    code = f"open('{tmp_path}/notes"
    reply = complete(completer, code)
    assert reply["matches"] == ["notes_ñ.txt'"]  # jedi closes the string
    assert reply["cursor_start"] == len(code) - len("notes")


def test_names_defined_earlier_in_the_cell(completer: Completer) -> None:
    reply = complete(completer, "xylophone_count = 3\nxylo")
    assert reply["matches"] == ["xylophone_count"]
    assert reply["cursor_start"] == len("xylophone_count = 3\n")


def test_non_ascii_and_multi_line_cursor_in_the_middle(completer: Completer) -> None:
    code = "ñandú_total = 'é'\nñandú_t\nprint('😀', ñandú_total)"
    cursor = code.index("ñandú_t\n") + len("ñandú_t")
    reply = complete(completer, code, cursor)
    assert reply["matches"] == ["ñandú_total"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (cursor - len("ñandú_t"), cursor)
    # An astral character before the cursor on the same line counts as one code point.
    code = "s = '😀'; os.pa"
    reply = complete(completer, code)
    assert reply["cursor_start"] == len(code) - 2 == 12
    assert "path" in reply["matches"]


def test_types_metadata_has_signatures_for_functions(completer: Completer) -> None:
    reply = complete(completer, "os.pathco")
    (entry,) = [t for t in reply["metadata"]["_jupyter_types_experimental"] if t["text"] == "pathconf"]
    assert entry["type"] == "function"
    assert entry["signature"].startswith("(")
    assert "path" in entry["signature"]


def test_magics_complete_after_percent(completer: Completer) -> None:
    reply = complete(completer, "%ti")
    assert reply["matches"] == ["%time", "%timeit"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (0, 3)
    assert complete(completer, "x = 1\n%%ti")["matches"] == ["%%time"]
    assert complete(completer, "%")["matches"][:3] == ["%cd", "%time", "%timeit"]
    # After the magic's name, the rest of the line is Python.
    assert "path" in complete(completer, "%time os.pa")["matches"]


def test_magics_are_optional(interpreter: Interpreter) -> None:
    c = Completer(interpreter.namespace, magics=lambda: getattr(interpreter, "magics", None), timeout=5.0)
    reply = complete(c, "%ti")
    if getattr(interpreter, "magics", None) is None:
        assert reply["matches"] == []
    else:
        assert "%time" in reply["matches"]


def test_cursor_outside_the_code_is_clamped(completer: Completer) -> None:
    assert complete(completer, "os.pa", 99)["cursor_end"] == 5
    assert complete(completer, "os.pa", -3)["cursor_end"] == 0


def test_imports_of_loaded_modules_complete_from_the_live_module(completer: Completer) -> None:
    code = "import os.path as osp, json\nfrom os import sep as separator\nosp.jo"
    rewritten, bound = livenames.cell_imports(code, len(code))
    assert len(rewritten) == len(code)
    assert rewritten.startswith("pass ") and "\npass " in rewritten
    assert bound == {"osp": os.path, "json": json, "separator": os.sep}
    assert complete(completer, code)["matches"] == ["join"]
    # Not loaded, or the statement the cursor is in: left for jedi to read.
    assert livenames.cell_imports("import not_loaded_xyz\nx", 24) == ("import not_loaded_xyz\nx", {})
    assert livenames.cell_imports("import os.pa", 12) == ("import os.pa", {})
    assert livenames.cell_imports("from os import nothing_xyz", 0)[1] == {}


# -- the deadline and the fallback ---------------------------------------------------


def test_deadline_interrupts_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGALRM)
    finished: list[bool] = []
    with pytest.raises(DeadlineExceeded):
        call_with_deadline(lambda: (time.sleep(5), finished.append(True)), 0.05)
    assert not finished  # cut short, not run to its end
    assert signal.getsignal(signal.SIGALRM) is before
    assert call_with_deadline(lambda: 42, 0.05) == 42
    time.sleep(0.1)  # no alarm left behind


def test_deadline_restores_a_timer_of_the_user() -> None:
    fired: list[int] = []
    before = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    before_timer = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        signal.setitimer(signal.ITIMER_REAL, 3.0)
        with pytest.raises(DeadlineExceeded):
            call_with_deadline(lambda: time.sleep(5), 0.05)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 2.0 < left < 3.0
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
        if before_timer[0]:
            signal.setitimer(signal.ITIMER_REAL, *before_timer)


def test_slow_jedi_falls_back_to_the_namespace(completer: Completer, monkeypatch: pytest.MonkeyPatch) -> None:
    import jedi

    finished: list[bool] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(10)
        finished.append(True)

    monkeypatch.setattr(jedi, "Interpreter", slow)
    completer.timeout = 0.2
    reply = complete(completer, "os.pa")
    assert not finished  # jedi was cut short at the timeout, not waited for
    assert completer.last_source == "fallback"
    assert {"path", "pathsep", "pardir"} <= set(reply["matches"])
    assert (reply["cursor_start"], reply["cursor_end"]) == (3, 5)


def test_timeout_from_the_environment(completer: Completer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(completion.TIMEOUT_ENV, "0.000001")
    assert completion.completion_timeout() == pytest.approx(1e-6)
    completer.timeout = None
    reply = complete(completer, "os.pa")
    assert completer.last_source == "fallback"
    assert "path" in reply["matches"]
    monkeypatch.setenv(completion.TIMEOUT_ENV, "bad")
    assert completion.completion_timeout() == completion.DEFAULT_TIMEOUT


def test_failing_jedi_falls_back(completer: Completer, monkeypatch: pytest.MonkeyPatch) -> None:
    import jedi

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("jedi bug")

    monkeypatch.setattr(jedi, "Interpreter", broken)
    assert complete(completer, "thing.si")["matches"] == ["size"]
    assert completer.last_source == "fallback"


@pytest.fixture
def fallback(completer: Completer, monkeypatch: pytest.MonkeyPatch) -> Completer:
    def no_jedi(self: Completer, code: str, cursor: int, timeout: float) -> None:
        raise DeadlineExceeded

    monkeypatch.setattr(Completer, "_jedi_matches", no_jedi)
    return completer


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("os.path.jo", ["join"]),
        ("thing.si", ["size"]),
        ("zi", ["zip"]),
        ("impo", ["import", "ImportError", "ImportWarning"]),
        ("th", ["Thing", "thing"]),
        ("import os.pa", ["path"]),
        ("from os import sep", ["sep"]),
        ("import os; os.pa", ["pardir", "path", "pathconf", "pathconf_names", "PathLike", "pathsep"]),
        ("import os.path as osp\nosp.jo", ["join"]),
        ("from os import path as p, sep\np.jo", ["join"]),
        ("import json; json.du", ["dump", "dumps"]),
        ("x = 1; zi", ["zip"]),
        ("import not_loaded_module_xyz; not_loaded_module_xyz.a", []),
        ("f().x", []),  # would need a call
        ("'abc'.up", []),
        ("nothing_here.x", []),
    ],
)
def test_fallback_completer(fallback: Completer, code: str, expected: list[str]) -> None:
    reply = complete(fallback, code)
    assert fallback.last_source == "fallback"
    assert reply["matches"] == expected
    if expected:
        assert reply["cursor_end"] - reply["cursor_start"] == len(code.split(".")[-1].split()[-1])


def test_fallback_private_names_only_when_asked(fallback: Completer) -> None:
    assert all(not m.startswith("_") for m in complete(fallback, "thing.")["matches"])
    assert "__init__" in complete(fallback, "thing.__")["matches"]


# -- inspection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cursor", "name"),
    [
        ("len(", 4, "len"),
        ("len(x, ", 7, "len"),
        ("print(os.path.join('a', ", None, "os.path.join"),
        ("os.pa", 4, "os.pa"),
        ("os.path.join", 5, "os.path"),
        ("  thing", 2, "thing"),
        ("x = [1,\n 2]\nf(x,\n  ", None, "f"),
        ("é = 1\nñ(é", None, "é"),
        ("f(1) + ", None, ""),
        ("1 + ", None, ""),
        ("for x in ", None, ""),
    ],
)
def test_name_at_cursor(code: str, cursor: int | None, name: str) -> None:
    assert name_at_cursor(code, len(code) if cursor is None else cursor) == name


def test_inspect_a_cell_function(interpreter: Interpreter) -> None:
    ns, labels = interpreter.namespace, interpreter.labels
    level0 = inspect_reply("f", 1, 0, ns, labels)
    assert level0["found"] is True
    text = level0["data"]["text/plain"]
    assert "Signature:       f(a, bee=1, bar=2)" in text
    assert "Type:            function" in text
    assert "Add things." in text
    assert "Cell In[1]" in text
    assert "return a" not in text
    text = inspect_reply("f", 1, 1, ns, labels)["data"]["text/plain"]
    assert "def f(a, bee=1, bar=2):\n    'Add things.'\n    return a" in text


def test_inspect_a_cell_class_and_an_instance(interpreter: Interpreter) -> None:
    ns, labels = interpreter.namespace, interpreter.labels
    text = inspect_reply("Thing", 5, 1, ns, labels)["data"]["text/plain"]
    assert "class Thing:" in text and "Init signature:  Thing(size=1)" in text
    text = inspect_reply("thing", 5, 0, ns, labels)["data"]["text/plain"]
    assert "Type:            __main__.Thing" in text
    assert "Class docstring: A thing." in text
    assert "String form:" in text


def test_inspect_inside_a_call(interpreter: Interpreter) -> None:
    reply = inspect_reply("len(", 4, 0, interpreter.namespace, interpreter.labels)
    assert reply["found"] is True
    assert "Return the number of items" in reply["data"]["text/plain"]


def test_inspect_unknown_name(interpreter: Interpreter) -> None:
    reply = inspect_reply("no_such_name", 3, 0, interpreter.namespace, interpreter.labels)
    assert reply == {"status": "ok", "found": False, "data": {}, "metadata": {}}
    assert inspect_reply("", 0, 0, interpreter.namespace, interpreter.labels)["found"] is False


def test_inspect_calls_nothing(interpreter: Interpreter) -> None:
    interpreter.run_cell("calls = []\ndef g():\n    calls.append(1)\n    return len")
    # g()( asks about what g() returns: that would need a call, so nothing is found.
    assert inspect_reply("g()(", 4, 0, interpreter.namespace, interpreter.labels)["found"] is False
    assert inspect_reply("g()", 1, 0, interpreter.namespace, interpreter.labels)["found"] is True
    assert interpreter.namespace["calls"] == []


def test_describe_builtin_without_source() -> None:
    text = describe(len, 1, "len")
    assert "Docstring:" in text and "Source:" not in text
