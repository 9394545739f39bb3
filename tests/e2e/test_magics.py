"""Magics, shell escapes and help through a real kernel: what a user sees."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.harness import Execution, KernelHarness, ok, result


@pytest.fixture
def cwd_restored(kernel: KernelHarness) -> object:
    before = result(ok(kernel, "import os as _os; _os.getcwd()"))
    yield before
    ok(kernel, f"import os as _os; _os.chdir({before})")


def test_shell_escape_streams_before_the_reply(kernel: KernelHarness) -> None:
    ex = ok(kernel, "!echo hi")
    assert ex.stream_text() == "hi\r\n"  # stdout is a pseudo-terminal, as in ipykernel
    assert ex.types == ["status", "execute_input", "stream", "status"]
    ex = ok(kernel, "!echo oops >&2; exit 3")
    assert ex.stream_text("stderr") == "oops\n"
    assert result(ok(kernel, "_exit_code")) == "3"


def test_shell_escape_with_python_values(kernel: KernelHarness) -> None:
    ex = ok(kernel, "word = 'hello'\nfor i in range(2):\n    !echo {word.upper()} $i")
    assert ex.stream_text() == "HELLO 0\r\nHELLO 1\r\n"


def test_shell_output_as_a_list(kernel: KernelHarness) -> None:
    assert result(ok(kernel, "x = !printf 'a\\nb\\n'\nx")) == "['a', 'b']"
    assert result(ok(kernel, "x.n, x.s")) == "('a\\nb', 'a b')"


def test_interrupting_a_shell_command_kills_it(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = kernel.kc.execute("!echo started; sleep 30.4321; echo not interrupted")
    kernel.wait_for_iopub(
        lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream", timeout=10
    )
    kernel.process.interrupt()
    reply = kernel.get_reply(msg_id, timeout=5)  # ended by the interrupt, long before the sleep
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    ex = Execution(reply, kernel.collect_iopub(msg_id))
    assert "not interrupted" not in ex.stream_text()
    # the child is gone: nothing of it is left running (the [0] keeps pgrep's own shell out)
    assert result(ok(kernel, "!!pgrep -f 'sleep 30[.]4321' || true")) == "[]"


def test_help_pages_the_description(kernel: KernelHarness) -> None:
    ok(kernel, "def add(a, b=1):\n    'Add two numbers.'\n    return a + b")
    ex = ok(kernel, "add?")
    (page,) = ex.content["payload"]
    assert page["source"] == "page" and page["start"] == 0
    text = page["data"]["text/plain"]
    assert re.search(r"^Signature: +add\(a, b=1\)$", text, re.M) and "Add two numbers." in text
    (page,) = ok(kernel, "add??").content["payload"]
    assert "return a + b" in page["data"]["text/plain"]
    (page,) = ok(kernel, "len??").content["payload"]
    assert "Return the number of items" in page["data"]["text/plain"]
    (page,) = ok(kernel, "import os\n?os.path").content["payload"]
    assert "Type:" in page["data"]["text/plain"]
    ex = ok(kernel, "no_such_thing?")
    assert ex.stream_text() == "Object `no_such_thing` not found.\n"
    assert ex.content["payload"] == []


def test_unknown_magic_is_a_usage_error(kernel: KernelHarness) -> None:
    ex = kernel.execute("%nosuch x")
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "UsageError"
    evalue = ex.content["evalue"]
    assert evalue.startswith("fastkernel has no magic %nosuch")
    assert "%timeit" in evalue and "%%capture" in evalue


def test_capture_keeps_prints_and_displays(kernel: KernelHarness) -> None:
    ex = ok(
        kernel,
        "%%capture cap\nprint('hidden')\nimport sys; print('err', file=sys.stderr)\ndisplay('shown later')",
    )
    assert ex.of_type("stream") == [] and ex.of_type("display_data") == []
    assert result(ok(kernel, "cap.stdout, cap.stderr, len(cap.outputs)")) == "('hidden\\n', 'err\\n', 1)"
    ex = ok(kernel, "cap.show()")
    assert ex.stream_text() == "hidden\n" and ex.stream_text("stderr") == "err\n"
    (shown,) = ex.of_type("display_data")
    assert shown["content"]["data"] == {"text/plain": "'shown later'"}
    ex = ok(kernel, "%%capture --no-stdout\nprint('seen')\ndisplay('unseen')")
    assert ex.stream_text() == "seen\n" and ex.of_type("display_data") == []


def test_time_prints_times_and_returns_the_value(kernel: KernelHarness) -> None:
    ex = ok(kernel, "%time sum(range(10))")
    assert result(ex) == "45"
    text = ex.stream_text()
    assert text.startswith("CPU times: user ") and ", sys: " in text and "\nWall time: " in text
    ex = ok(kernel, "%%time\ny = 2\ny * 3")
    assert result(ex) == "6" and "Wall time: " in ex.stream_text()


def test_timeit(kernel: KernelHarness) -> None:
    ex = ok(kernel, "t = %timeit -o -n 10 -r 3 sum(range(100))\nt.loops, t.repeat, len(t.all_runs)")
    assert result(ex) == "(10, 3, 3)"
    assert "per loop (mean \u00b1 std. dev. of 3 runs, 10 loops each)" in ex.stream_text()
    ex = ok(kernel, "%%timeit -n 2 -r 2 x = 5\nx * 2")
    assert "(mean \u00b1 std. dev. of 2 runs, 2 loops each)" in ex.stream_text()


def test_who_and_reset(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ok(kernel, "alpha = 1\nbeta = 'b'\n1 + 1")
    assert ok(kernel, "%who").stream_text() == "alpha\tbeta\n"
    assert ok(kernel, "%who str").stream_text() == "beta\n"
    table = ok(kernel, "%whos").stream_text()
    assert table.splitlines()[0].split() == ["Variable", "Type", "Data/Info"]
    assert "alpha" in table and "int" in table
    ok(kernel, "%reset -f")
    ex = kernel.execute("alpha")
    assert ex.content["ename"] == "NameError"
    assert result(ok(kernel, "len(Out), callable(exit), 'alpha' in dir()")) == "(0, True, False)"
    assert ok(kernel, "%who").stream_text() == "Interactive namespace is empty.\n"


def test_run_a_script_with_argv(kernel: KernelHarness, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint('args', sys.argv[1:])\nran = __name__\n")
    ex = ok(kernel, f"%run {script} one 'two three'")
    assert ex.stream_text() == "args ['one', 'two three']\n"
    assert result(ok(kernel, "ran, __name__")) == "('__main__', '__main__')"
    ex = kernel.execute("%run /no/such/file.py")
    assert ex.content["ename"] == "UsageError"


def test_writefile_then_read(kernel: KernelHarness, tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    ex = ok(kernel, f"%%writefile {path}\nline one\nline two")
    assert ex.stream_text() == f"Writing {path}\n"
    ex = ok(kernel, f"%%writefile -a {path}\nline three")
    assert ex.stream_text() == f"Appending to {path}\n"
    assert path.read_text() == "line one\nline two\nline three\n"


def test_cd_and_pwd(kernel: KernelHarness, tmp_path: Path, cwd_restored: str) -> None:
    ex = ok(kernel, f"%cd {tmp_path}")
    assert ex.stream_text() == f"{os.path.realpath(tmp_path)}\n"
    assert result(ok(kernel, "%pwd")) == repr(os.path.realpath(tmp_path))
    assert result(ok(kernel, "import os\nhere = %pwd\nhere == os.getcwd()")) == "True"
    ok(kernel, "%cd -")
    assert result(ok(kernel, "%pwd")) == cwd_restored


def test_env(kernel: KernelHarness) -> None:
    assert ok(kernel, "%env FK_MAGIC_TEST=on").stream_text() == "env: FK_MAGIC_TEST=on\n"
    assert result(ok(kernel, "%env FK_MAGIC_TEST")) == "'on'"
    assert result(ok(kernel, "e = %env\ne['FK_MAGIC_TEST']")) == "'on'"


def test_bash_html_and_pip(kernel: KernelHarness) -> None:
    ex = ok(kernel, "%%bash\nfor i in 1 2; do echo $i; done")
    assert ex.stream_text() == "1\n2\n"
    ex = ok(kernel, "%%html\n<b>bold</b>")
    (shown,) = ex.of_type("display_data")
    assert shown["content"]["data"] == {
        "text/html": "<b>bold</b>\n",
        "text/plain": "<IPython.core.display.HTML object>",
    }
    ex = ok(kernel, "%pip --version")
    assert "pip " in ex.stream_text()
    assert "you may need to restart the kernel" in ex.stream_text()


def test_matplotlib_and_config_errors(kernel: KernelHarness) -> None:
    ex = kernel.execute("%matplotlib qt")
    assert ex.content["ename"] == "UsageError" and "inline" in ex.content["evalue"]
    ex = kernel.execute("%config Foo.bar = 1")
    assert ex.content["ename"] == "UsageError" and "InlineBackend" in ex.content["evalue"]


def test_is_complete_for_cell_magics(kernel: KernelHarness) -> None:
    assert kernel.request("is_complete_request", {"code": "%%bash\necho"}).content["status"] == "incomplete"
    assert kernel.request("is_complete_request", {"code": "%%bash\necho\n\n"}).content["status"] == "complete"
    assert kernel.request("is_complete_request", {"code": "!ls"}).content["status"] == "complete"
    assert kernel.request("is_complete_request", {"code": "len?"}).content["status"] == "complete"


def test_matplotlib_inline_and_figure_formats(kernel: KernelHarness) -> None:
    pytest.importorskip("matplotlib")
    ok(kernel, "%matplotlib inline")
    before = result(ok(kernel, "from fastkernel import mplinline\nmplinline.get_figure_formats()[0]"))
    try:
        ok(kernel, "%config InlineBackend.figure_formats = ['svg']")
        ex = ok(kernel, "import matplotlib.pyplot as plt\nplt.plot([1, 2]);")
        (shown,) = ex.of_type("display_data")
        assert "image/svg+xml" in shown["content"]["data"]
    finally:
        ok(kernel, f"mplinline.set_figure_formats(*{before})")
