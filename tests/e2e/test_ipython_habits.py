"""IPython habits notebooks and tools rely on, through a real kernel (issue 2/7).

Indented cells, ``''`` on ``sys.path``, %autoawait, interrupting pdb, the parent API of threads,
``started`` in the execute_reply metadata and %load_ext. The history magics are in test_history_magics.py.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Execution, KernelHarness, ok, result
from tests.kernels import TIMEOUT


def for_cell(msg_id: str, msg_type: str = "stream") -> Any:
    return lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == msg_type


# -- indented cells ------------------------------------------------------------------


def test_a_cell_indented_as_a_whole_runs(kernel: KernelHarness) -> None:
    pasted = "    total = 0\n    for i in range(3):\n        total += i\n\n    print('total', total)\n"
    pasted += "    total * 10"
    ex = ok(kernel, pasted)
    assert ex.stream_text() == "total 3\n"
    assert result(ex) == "30"
    assert result(ok(kernel, "In[-2]")) == repr(pasted)  # kept as typed
    ex = ok(kernel, '\n\t"""From a docstring."""\n\tvalue = 5\n\tvalue')
    assert result(ex) == "5"


def test_a_line_indented_less_than_the_first_is_still_an_error(kernel: KernelHarness) -> None:
    ex = kernel.execute("    a = 1\n  b = 2")
    assert ex.content["ename"] == "IndentationError"
    assert ex.content["traceback"][0].replace("\x1b[0m", "").endswith(", line 2")  # coloured


# -- the working directory on sys.path ------------------------------------------------


def test_imports_follow_the_working_directory(fresh_kernel: KernelHarness, tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "habit_module.py").write_text(f"WHERE = {name!r}\n")
    assert result(ok(fresh_kernel, "import sys\nsys.path[0]")) == "''"
    ok(fresh_kernel, f"%cd {tmp_path / 'two'}")
    assert result(ok(fresh_kernel, "import habit_module\nhabit_module.WHERE")) == "'two'"


# -- %autoawait -----------------------------------------------------------------------------


def test_autoawait_off_and_on(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    assert ok(kernel, "%autoawait").stream_text() == "autoawait is `On`, and set to use `asyncio`\n"
    ok(kernel, "%autoawait off")
    assert ok(kernel, "%autoawait").stream_text() == "autoawait is `Off`, and set to use `asyncio`\n"
    ex = kernel.execute("import asyncio\nawait asyncio.sleep(0)")
    assert ex.content["ename"] == "SyntaxError" and "'await' outside function" in ex.content["evalue"]
    ok(kernel, "%autoawait asyncio")
    assert result(ok(kernel, "import asyncio\nawait asyncio.sleep(0, 'slept')")) == "'slept'"
    ex = kernel.execute("%autoawait curio")
    assert ex.content["ename"] == "UsageError" and "takes on, off, asyncio or trio" in ex.content["evalue"]


def test_autoawait_trio_without_trio_says_how_to_get_it(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ok(kernel, "import sys\nsys.modules['trio'] = None  # as if trio were not installed")
    ex = kernel.execute("%autoawait trio")
    assert ex.content["ename"] == "UsageError"
    assert "trio is not installed in the kernel's environment" in ex.content["evalue"]
    assert "%pip install trio" in ex.content["evalue"]


def test_autoawait_trio_runs_cells_with_trio(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ok(kernel, "%autoawait trio")
    first = ok(kernel, "import trio\nawait trio.sleep(0)\ntrio.lowlevel.current_task().name")
    assert result(first) != ""
    assert first.stream_text("stderr") == ""  # trio finds no signal wakeup fd of the kernel's set
    msg_id = kernel.kc.execute("print('begin')\nawait trio.sleep(30)", stop_on_error=False)
    kernel.wait_for_iopub(for_cell(msg_id))
    kernel.process.interrupt()
    reply = kernel.get_reply(msg_id)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert result(ok(kernel, "1 + 1")) == "2"


def test_tasks_scheduled_without_await_run_between_cells(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    code = (
        "import asyncio\nasync def tick():\n    for i in range(3):\n        print(i, end='')\n"
        "        await asyncio.sleep(0.01)\n    print('done')\n"
        "task = asyncio.get_event_loop().create_task(tick())"
    )
    msg_id = kernel.kc.execute(code)
    ex = Execution(kernel.get_reply(msg_id), kernel.collect_iopub(msg_id))
    assert ex.content["status"] == "ok"
    kernel.wait_for_iopub(lambda m: for_cell(msg_id)(m) and "done" in m["content"]["text"])
    later = "".join(m["content"]["text"] for m in kernel.stray if for_cell(msg_id)(m))
    assert ex.stream_text() + later == "012done\n"  # the task wrote to the cell that created it
    assert result(ok(kernel, "task.done()")) == "True"


def test_an_interrupt_at_a_pdb_prompt_ends_the_cell(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = kernel.kc.execute("import pdb; pdb.set_trace()\nprint('not reached')", stop_on_error=False)
    prompt = kernel.kc.get_stdin_msg(timeout=TIMEOUT)
    assert prompt["msg_type"] == "input_request" and prompt["content"]["prompt"] == "(Pdb) "
    kernel.process.interrupt()
    reply = kernel.get_reply(msg_id)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    ex = Execution(reply, kernel.collect_iopub(msg_id))
    # pdb shows the line it stopped before (`-> print('not reached')`); the line never ran
    assert "not reached" not in ex.stream_text().splitlines()
    assert result(ok(kernel, "1 + 1")) == "2"  # the debugger is gone: nothing traces this cell


# -- the parent of threads ------------------------------------------------------------------

THREADS = """\
import threading
here = get_ipython().get_parent()
go = threading.Event()

def worker(parent, use_token):
    if use_token:
        token = get_ipython().set_thread_parent(parent)
    else:
        get_ipython().set_parent(parent)
    print('to the first cell')
    display('shown in the first cell')
    if use_token:
        get_ipython().reset_thread_parent(token)
        print('back to the starting cell')
"""


@pytest.mark.parametrize("use_token", [True, False], ids=["set_thread_parent", "set_parent"])
def test_a_thread_sends_its_output_to_a_chosen_cell(fresh_kernel: KernelHarness, use_token: bool) -> None:
    kernel = fresh_kernel
    first = kernel.kc.execute(THREADS)
    assert kernel.get_reply(first)["content"]["status"] == "ok"
    kernel.collect_iopub(first)
    start = f"t = threading.Thread(target=worker, args=(here, {use_token}))\nt.start(); t.join()"
    second = kernel.execute(start)
    assert second.content["status"] == "ok"
    display = kernel.wait_for_iopub(for_cell(first, "display_data"))
    assert display["content"]["data"]["text/plain"] == "'shown in the first cell'"
    stream = kernel.wait_for_iopub(for_cell(first))
    assert stream["content"]["text"] == "to the first cell\n"
    # after reset_thread_parent the thread writes where it wrote before: the cell that started it
    assert second.stream_text() == ("back to the starting cell\n" if use_token else "")


def test_get_parent_is_the_running_request(kernel: KernelHarness) -> None:
    ex = ok(kernel, "get_ipython().get_parent()['header']['msg_id']")
    assert result(ex) == repr(ex.reply["parent_header"]["msg_id"])
    ex = kernel.execute("get_ipython().set_parent('not a request')")
    assert ex.content["ename"] == "TypeError" and "request message" in ex.content["evalue"]


# -- execute_reply metadata ----------------------------------------------------------------------


def test_execute_reply_metadata_says_when_the_cell_started(kernel: KernelHarness) -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    ex = ok(kernel, "import time\ntime.sleep(0.2)")
    metadata = ex.reply["metadata"]
    started = datetime.datetime.fromisoformat(metadata["started"].replace("Z", "+00:00"))
    assert started.utcoffset() == datetime.timedelta(0)  # UTC, as ipykernel's
    replied = ex.reply["header"]["date"]  # jupyter_client parses it
    assert before - datetime.timedelta(seconds=1) <= started <= replied - datetime.timedelta(seconds=0.2)
    assert metadata["status"] == "ok" and metadata["duration_s"] >= 0.2
    assert "peak_rss_growth_bytes" in metadata


# -- extensions --------------------------------------------------------------------------------------

EXTENSION = """\
LOADS = []

def load_ipython_extension(ip):
    LOADS.append(ip)
    ip.user_ns['from_extension'] = 'loaded'
    ip.register_magic_function(lambda line: line.upper(), 'line', 'shout')

def unload_ipython_extension(ip):
    ip.user_ns.pop('from_extension')
"""


@pytest.fixture
def extensions(tmp_path: Path) -> Path:
    (tmp_path / "habit_ext.py").write_text(EXTENSION)
    needy = "def load_ipython_extension(ip):\n    ip.history_manager.reset()\n"
    (tmp_path / "needy_ext.py").write_text(needy)
    (tmp_path / "not_an_ext.py").write_text("x = 1\n")
    return tmp_path


def test_load_ext_unload_ext_and_reload_ext(fresh_kernel: KernelHarness, extensions: Path) -> None:
    kernel = fresh_kernel
    ok(kernel, f"import sys\nsys.path.insert(0, {str(extensions)!r})")
    ok(kernel, "%load_ext habit_ext")
    assert result(ok(kernel, "loud = %shout quiet\nfrom_extension, loud")) == "('loaded', 'QUIET')"
    again = ok(kernel, "%load_ext habit_ext").stream_text()
    assert again == "The habit_ext extension is already loaded. To reload it, use:\n  %reload_ext habit_ext\n"
    ok(kernel, "%reload_ext habit_ext")
    assert result(ok(kernel, "import habit_ext\nlen(habit_ext.LOADS), from_extension")) == "(1, 'loaded')"
    ok(kernel, "%unload_ext habit_ext")
    assert result(ok(kernel, "'from_extension' in dir()")) == "False"
    assert ok(kernel, "%unload_ext habit_ext").stream_text() == "The habit_ext extension is not loaded.\n"


def test_load_ext_names_what_an_extension_needs(fresh_kernel: KernelHarness, extensions: Path) -> None:
    kernel = fresh_kernel
    ok(kernel, f"import sys\nsys.path.insert(0, {str(extensions)!r})")
    ex = kernel.execute("%load_ext needy_ext")
    assert ex.content["ename"] == "UsageError"
    assert ex.content["evalue"].startswith(
        "The needy_ext extension needs get_ipython().history_manager, which fastkernel does not have."
    )
    assert "it has: " in ex.content["evalue"] and "register_magics" in ex.content["evalue"]
    ex = kernel.execute("%load_ext not_an_ext")
    assert ex.content["ename"] == "UsageError" and "not an IPython extension" in ex.content["evalue"]
    ex = kernel.execute("%load_ext no_such_module_here")
    assert ex.content["ename"] == "ModuleNotFoundError"


def test_autoreload_extension_from_ipython(fresh_kernel: KernelHarness, tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    kernel = fresh_kernel
    module = tmp_path / "reloaded_mod.py"
    module.write_text("def value():\n    return 1\n")
    ok(kernel, f"import sys\nsys.path.insert(0, {str(tmp_path)!r})")
    ok(kernel, "%load_ext autoreload")
    ok(kernel, "%autoreload 2")
    assert result(ok(kernel, "import reloaded_mod\nreloaded_mod.value()")) == "1"
    module.write_text("def value():\n    return 2\n")
    later = module.stat().st_mtime + 10  # a newer modification time, without waiting for the clock
    os.utime(module, (later, later))
    assert result(ok(kernel, "reloaded_mod.value()")) == "2"
