"""Output streams through a real kernel: coalescing, order, routing to cells, fd capture, bounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import KernelHarness, merge_streams

MAX_MESSAGE = 1 << 20  # FastKernelApp.max_stream_message's default


def stream_from(msg_id: str, text: str) -> Any:
    return lambda m: (
        m["msg_type"] == "stream"
        and m["parent_header"].get("msg_id") == msg_id
        and text in m["content"]["text"]
    )


@pytest.fixture
def logged_kernel() -> Iterator[KernelHarness]:
    """A kernel whose process stderr (its log) goes to a file."""
    with KernelHarness.start(log=True) as harness:
        yield harness


# -- coalescing and order -----------------------------------------------------------------


def test_flood_flushed_after_every_write_arrives_whole_in_few_messages(kernel: KernelHarness) -> None:
    ex = kernel.execute("for i in range(50000):\n    print(i, flush=True)")
    assert ex.content["status"] == "ok"
    assert ex.stream_text() == "".join(f"{i}\n" for i in range(50000))
    # Flushes are coalesced (stream_flush_interval, 0.05 s: ~20 messages a second), not one
    # message per flush: far fewer messages than flushes.
    assert len(ex.of_type("stream")) * 100 <= 50000, len(ex.of_type("stream"))


def test_interleaved_stdout_and_stderr_keep_the_order_of_writes(kernel: KernelHarness) -> None:
    code = (
        "import sys\n"
        "for i in range(100):\n"  # 200 messages: within max_stream_rate's burst (see test_floods)
        "    print('out', i, flush=True)\n"
        "    print('err', i, file=sys.stderr, flush=True)\n"
    )
    ex = kernel.execute(code)
    expected = [(name, f"{name[3:]} {i}\n") for i in range(100) for name in ("stdout", "stderr")]
    assert merge_streams(ex.iopub) == expected


# -- routing output to cells -----------------------------------------------------------------


def test_thread_output_after_its_cell_finished_goes_to_that_cell(kernel: KernelHarness) -> None:
    first = kernel.execute(
        "import threading\n"
        "st_go = threading.Event()\n"
        "st_thread = threading.Thread(target=lambda: (st_go.wait(20), print('from the thread')))\n"
        "st_thread.start()\n"
    )
    assert first.content["status"] == "ok"
    second = kernel.execute("print('cell two')\nst_go.set()\nst_thread.join()")
    assert second.stream_text() == "cell two\n"
    first_id = first.reply["parent_header"]["msg_id"]
    late = kernel.wait_for_iopub(stream_from(first_id, "from the thread"))
    assert late["content"] == {"name": "stdout", "text": "from the thread\n"}


def test_asyncio_task_output_goes_to_the_cell_that_created_it(kernel: KernelHarness) -> None:
    first = kernel.execute(
        "import asyncio\n"
        "st_release = asyncio.Event()\n"
        "async def st_later():\n"
        "    await st_release.wait()\n"
        "    print('from the task')\n"
        "async def st_spawn():\n"  # so the task is made inside the kernel's loop, as the cell runs
        "    return asyncio.ensure_future(st_later())\n"
        "st_task = await st_spawn()\n"
    )
    assert first.content["status"] == "ok", first.content
    second = kernel.execute("st_release.set()\nawait st_task\nprint('cell two')")
    assert second.content["status"] == "ok", second.content
    assert second.stream_text() == "cell two\n"
    first_id = first.reply["parent_header"]["msg_id"]
    late = kernel.wait_for_iopub(stream_from(first_id, "from the task"))
    assert late["content"]["text"] == "from the task\n"


def test_output_to_sends_a_thread_output_to_the_current_cell_or_nowhere(kernel: KernelHarness) -> None:
    first = kernel.execute(
        "import threading\n"
        "from fastkernel.outputs import output_to, CURRENT_CELL, DISCARD\n"
        "st_go = threading.Event()\n"
        "def st_work():\n"
        "    st_go.wait(20)\n"
        "    with output_to(CURRENT_CELL):\n"
        "        print('to the running cell')\n"
        "    with output_to(DISCARD):\n"
        "        print('to nowhere')\n"
        "st_thread = threading.Thread(target=st_work)\n"
        "st_thread.start()\n"
    )
    assert first.content["status"] == "ok"
    second = kernel.execute("st_go.set()\nst_thread.join()")
    assert second.stream_text() == "to the running cell\n"
    first_id = first.reply["parent_header"]["msg_id"]
    assert not [m for m in kernel.stray if m["parent_header"].get("msg_id") == first_id]


def test_output_target_of_a_cell_can_be_written_to_later(kernel: KernelHarness) -> None:
    first = kernel.execute(
        "from fastkernel.outputs import output_target, output_to\nst_here = output_target()"
    )
    second = kernel.execute("with output_to(st_here):\n    print('back to the first cell')\nprint('here')")
    assert second.stream_text() == "here\n"
    first_id = first.reply["parent_header"]["msg_id"]
    late = kernel.wait_for_iopub(stream_from(first_id, "back to the first cell"))
    assert late["content"]["name"] == "stdout"


# -- file descriptors 1 and 2 ---------------------------------------------------------------


def test_subprocess_and_fd_writes_arrive_before_the_reply(kernel: KernelHarness) -> None:
    ex = kernel.execute(
        "import os, subprocess\n"
        "subprocess.run(['echo', 'hi'])\n"
        "os.system('echo x')\n"
        "os.write(1, b'y' * 1_000_000)\n"
        "os.write(2, b'to fd 2\\n');"
    )
    assert ex.content["status"] == "ok"
    assert ex.stream_text("stdout") == "hi\nx\n" + "y" * 1_000_000
    assert ex.stream_text("stderr") == "to fd 2\n"
    assert all(len(m["content"]["text"]) <= MAX_MESSAGE for m in ex.of_type("stream"))


def test_a_gil_holding_c_call_writing_a_megabyte_does_not_wedge(kernel: KernelHarness) -> None:
    try:
        allowed = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except OSError:
        pytest.skip("pipes cannot be enlarged here (not Linux)")
    if allowed < 1_000_000:
        pytest.skip(f"pipe-max-size is {allowed}: a GIL-holding write of 1 MB would block")
    # ctypes.PyDLL keeps the GIL during the call, as a C extension's printf would.
    ex = kernel.execute("import ctypes\nctypes.PyDLL(None).write(1, b'z' * 1_000_000, 1_000_000);")
    assert ex.content["status"] == "ok"
    assert ex.stream_text() == "z" * 1_000_000


def test_fd_output_comes_before_the_result_it_precedes(kernel: KernelHarness) -> None:
    ex = kernel.execute("import os\nos.system('echo before')\n42")
    assert [t for t in ex.types if t in ("stream", "execute_result")] == ["stream", "execute_result"]
    assert ex.stream_text() == "before\n"


def test_subprocess_can_write_to_sys_stdout(kernel: KernelHarness) -> None:
    ex = kernel.execute("import subprocess, sys\nsubprocess.run(['echo', 'via fileno'], stdout=sys.stdout)")
    assert ex.content["status"] == "ok", ex.content
    assert ex.stream_text() == "via fileno\n"


def test_a_forked_child_writes_to_the_cell(kernel: KernelHarness) -> None:
    ex = kernel.execute(
        "import multiprocessing\n"
        "st_proc = multiprocessing.get_context('fork').Process(target=print, args=('from the child',))\n"
        "st_proc.start()\n"
        "st_proc.join()\n"
        "print('exit code', st_proc.exitcode)"
    )
    text = ex.stream_text()
    assert sorted(text.splitlines()) == ["exit code 0", "from the child"], text


def test_a_forked_childs_unfinished_line_arrives_when_it_exits(kernel: KernelHarness) -> None:
    """A forked child writes whole lines to the captured fd (its print's text and newline in one
    write, so the parent's next line cannot land between them); what has no newline yet goes out
    when multiprocessing flushes the child's streams at its exit."""
    ex = kernel.execute(
        "import multiprocessing\n"
        "st_part = multiprocessing.get_context('fork').Process(target=print, args=('no newline',), "
        "kwargs={'end': ''})\n"
        "st_part.start()\n"
        "st_part.join()\n"
        "print('|parent', st_part.exitcode)"
    )
    assert ex.stream_text() == "no newline|parent 0\n"


def test_the_kernel_log_reaches_the_real_stderr_and_not_a_cell(logged_kernel: KernelHarness) -> None:
    kernel = logged_kernel
    msg_id = kernel.send("st_bogus_request", {})  # the kernel logs an unknown message type
    kernel.get_reply(msg_id, check=lambda msg, parent_id: None)  # an error reply of a made-up type
    ex = kernel.execute("print('after')")
    assert ex.stream_text() == "after\n"
    assert "st_bogus_request" in kernel.process.stderr
    everything = kernel.stray + ex.iopub + kernel.drain_iopub()
    assert not [m for m in everything if "st_bogus_request" in str(m["content"].get("text", ""))]


def test_without_fd_capture_fds_are_left_alone() -> None:
    with KernelHarness.start("--no-capture-fd-output") as kernel:
        ex = kernel.execute(
            "import os, sys\nos.write(1, b'not captured\\n')\nprint('captured')\n"
            "try:\n    sys.stdout.fileno()\nexcept OSError:\n    print('no fileno')"
        )
        assert ex.stream_text() == "captured\nno fileno\n"


# -- huge lines and the output limit ------------------------------------------------------------


@pytest.mark.parametrize("size", [1_000_000, 100_000_000], ids=["1MB", "100MB"])
def test_a_huge_line_arrives_whole_in_bounded_messages(kernel: KernelHarness, size: int) -> None:
    ex = kernel.execute(f"print('x' * {size})")
    messages = ex.of_type("stream")
    assert all(len(m["content"]["text"]) <= MAX_MESSAGE for m in messages)
    assert sum(len(m["content"]["text"]) for m in messages) == size + 1
    text = ex.stream_text()
    assert text.count("x") == size and text.endswith("\n")


def test_output_limit_keeps_head_and_tail_and_says_how_much_was_left_out() -> None:
    with KernelHarness.start("--output-limit=1000") as kernel:
        ex = kernel.execute(
            "import os\nfor i in range(100000):\n    print(f'{i:09d}')\nos.system('echo last')"
        )
        printed = "".join(f"{i:09d}\n" for i in range(100000)) + "last\n"
        marker = f"[... {len(printed) - 1000:,} characters elided by fastkernel (output_limit) ...]\n"
        assert merge_streams(ex.iopub) == [
            ("stdout", printed[:500]),
            ("stderr", marker),
            ("stdout", printed[-500:]),
        ]
        assert kernel.execute("print('next cell')").stream_text() == "next cell\n"
