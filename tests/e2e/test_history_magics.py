"""%history, %save, %load, %recall and %rerun through a real kernel: what a user sees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import KernelHarness, ok, result


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    """A kernel whose first cells are known: 1 ``a = 1``, 2 ``b = 'abcþ'`` / ``b``, 3 a loop."""
    harness = KernelHarness.start()
    ok(harness, "a = 1")
    ok(harness, "b = 'abcþ'\nb")
    ok(harness, "for i in range(2):\n    pass")
    yield harness
    harness.close()


def test_history_lists_this_sessions_cells_with_the_running_one(kernel: KernelHarness) -> None:
    text = ok(kernel, "%history 1-3 4").stream_text()
    assert text == "a = 1\nb = 'abcþ'\nb\nfor i in range(2):\n    pass\n%history 1-3 4\n"
    assert ok(kernel, "%hist").stream_text().startswith("a = 1\nb = 'abcþ'\n")


def test_history_numbers_outputs_and_prompts(kernel: KernelHarness) -> None:
    text = ok(kernel, "%history -n -o 1-2").stream_text()
    assert text == "   1: a = 1\n   2:\nb = 'abcþ'\nb\n'abcþ'\n"
    assert ok(kernel, "%history -p 1").stream_text() == ">>> a = 1\n"
    assert ok(kernel, "%history -n 2:3").stream_text() == "   2:\nb = 'abcþ'\nb\n"


def test_history_search_and_last_cells(kernel: KernelHarness) -> None:
    assert ok(kernel, "%history -g a = ").stream_text() == "   1: a = 1\n"  # the search itself is left out
    ok(kernel, "c = 3")
    ok(kernel, "d = 4")
    assert ok(kernel, "%history -l 2").stream_text() == "c = 3\nd = 4\n"
    assert ok(kernel, "%history -l 1 -g =").stream_text().endswith(": d = 4\n")


def test_history_to_a_file(kernel: KernelHarness, tmp_path: Path) -> None:
    target = tmp_path / "hist.out"
    ex = ok(kernel, f"%history -f {target}")
    assert ex.stream_text() == ""
    text = target.read_text(encoding="utf-8")
    assert text.startswith("a = 1\nb = 'abcþ'\nb\n") and text.endswith(f"%history -f {target}\n")


def test_bad_history_arguments_are_usage_errors(kernel: KernelHarness) -> None:
    ex = kernel.execute("%history -z")
    assert ex.content["ename"] == "UsageError" and "unrecognized arguments: -z" in ex.content["evalue"]
    ex = kernel.execute("%history 1-x")
    assert ex.content["ename"] == "UsageError" and "not a history range" in ex.content["evalue"]


def test_save_writes_ranges_to_a_file(kernel: KernelHarness, tmp_path: Path) -> None:
    target = tmp_path / "saved"
    ex = ok(kernel, f"%save {target} 1-2")
    header = f"The following commands were written to file `{target}.py`:\n"
    assert ex.stream_text() == header + "a = 1\nb = 'abcþ'\nb\n"
    assert (tmp_path / "saved.py").read_text(encoding="utf-8") == "a = 1\nb = 'abcþ'\nb\n"
    ok(kernel, f"%save -a {target}.py 1")
    assert (tmp_path / "saved.py").read_text(encoding="utf-8") == "a = 1\nb = 'abcþ'\nb\n\na = 1\n"
    ex = kernel.execute(f"%save {target}.py 1", allow_stdin=False)  # exists, and no way to ask
    assert ex.content["ename"] == "UsageError" and "use %save -f" in ex.content["evalue"]
    ok(kernel, f"%save -f {target}.py 1")
    assert (tmp_path / "saved.py").read_text(encoding="utf-8") == "a = 1\n"


def test_load_puts_code_in_the_next_cell(kernel: KernelHarness, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("x = 10\n\ndef twice(v):\n    return 2 * v\n\nprint(twice(x))\n", encoding="utf-8")
    (payload,) = ok(kernel, f"%load {script}").content["payload"]
    assert payload == {
        "source": "set_next_input",
        "text": f"# %load {script}\n{script.read_text(encoding='utf-8')}",
        "replace": True,
    }
    (payload,) = ok(kernel, f"%load -s twice {script}").content["payload"]
    assert payload["text"] == f"# %load -s twice {script}\ndef twice(v):\n    return 2 * v\n"
    (payload,) = ok(kernel, f"%load -r 1 {script}").content["payload"]
    assert payload["text"] == f"# %load -r 1 {script}\nx = 10\n"
    (payload,) = ok(kernel, "%load 1").content["payload"]
    assert payload["text"] == "# %load 1\na = 1"
    ex = kernel.execute("%load no_such_file.py")
    assert ex.content["ename"] == "UsageError" and "was not found in history" in ex.content["evalue"]


def test_recall_puts_history_or_a_value_in_the_next_cell(kernel: KernelHarness) -> None:
    (payload,) = ok(kernel, "%recall 1-2").content["payload"]
    assert payload == {"source": "set_next_input", "text": "a = 1\nb = 'abcþ'\nb", "replace": False}
    ok(kernel, "6 * 7")
    (payload,) = ok(kernel, "%recall").content["payload"]
    assert payload["text"] == "42"
    (payload,) = ok(kernel, "%recall range(2").content["payload"]
    assert payload["text"] == "for i in range(2):\n    pass"  # not an expression: the newest cell with it


def test_rerun_runs_earlier_cells_again(kernel: KernelHarness) -> None:
    ok(kernel, "counter = 0")
    ok(kernel, "counter += 1\ncounter")
    ex = ok(kernel, "%rerun")
    assert ex.stream_text() == "=== Executing: ===\ncounter += 1\ncounter\n=== Output: ===\n"
    assert result(ex) == "2"
    ex = ok(kernel, "%rerun -g counter +=")
    assert result(ex) == "3"
    assert result(ok(kernel, "counter")) == "3"


def start_with_history_file(history_file: Path) -> KernelHarness:
    """A kernel keeping its history in ``history_file`` (test kernels keep it in memory)."""
    return KernelHarness.start(history_file=str(history_file))


def test_history_of_earlier_sessions(tmp_path: Path) -> None:
    history_file = tmp_path / "history.sqlite"
    first = start_with_history_file(history_file)
    try:
        ok(first, "first_session = 1")
        ok(first, "print('bye')")
    finally:
        first.close()
    second = start_with_history_file(history_file)
    try:
        assert ok(second, "%history ~1/").stream_text() == "first_session = 1\nprint('bye')\n"
        assert ok(second, "%history ~1/2").stream_text() == "print('bye')\n"
        assert ok(second, "%history -g first_session").stream_text() == " 1/1: first_session = 1\n"
        (payload,) = ok(second, "%recall ~1/1").content["payload"]
        assert payload["text"] == "first_session = 1"
    finally:
        second.close()
