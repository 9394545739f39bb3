"""The visual debugger in cells run through a cell magic (%%time, %%timeit, %%capture) and at
a cell's last expression, which the kernel compiles apart from the cell's body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.dap import DapClient
from tests.harness import Execution, KernelHarness, ok, result

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def dap() -> Iterator[DapClient]:
    """A started debugger on a kernel shared by this module's tests (each ends its own stops)."""
    with KernelHarness.start() as kernel:
        client = DapClient(kernel)
        client.start()
        yield client


def stop_at_breakpoint(dap: DapClient, code: str, line: int) -> tuple[str, int, list[dict]]:
    """Set a breakpoint on ``line`` of ``code``, run it, wait for the stop there:
    (execute msg_id, thread, frames)."""
    path = dap.breakpoints(code, line)
    msg_id = dap.kernel.kc.execute(code)
    thread, frames = dap.stopped()
    assert (frames[0]["line"], frames[0]["source"]["path"]) == (line, path)
    dap.ok("setBreakpoints", source={"path": path}, breakpoints=[], lines=[], sourceModified=False)
    return msg_id, thread, frames


@pytest.mark.parametrize("magic", ["%%time", "%%capture"])
def test_breakpoint_binds_in_a_cell_magic_body(dap: DapClient, magic: str) -> None:
    code = f"{magic}\nbase = 20\nbumped = base + 1\nbumped\n"
    msg_id, thread, frames = stop_at_breakpoint(dap, code, 3)
    assert frames[0]["name"] == "<module>"
    assert dap.locals(frames[0]["id"])["base"] == "20"
    dap.ok("continue", threadId=thread)
    assert dap.kernel.get_reply(msg_id)["content"]["status"] == "ok"
    assert result(ok(dap.kernel, "bumped")) == "21"


def test_breakpoint_binds_in_a_timeit_cell(dap: DapClient) -> None:
    code = "%%timeit -n1 -r1 start = 3\nsquare = start * start\n"
    msg_id, thread, frames = stop_at_breakpoint(dap, code, 2)
    assert frames[0]["name"] == "inner"  # timeit's function, compiled in the cell
    assert dap.locals(frames[0]["id"])["start"] == "3"  # its setup ran first
    dap.ok("continue", threadId=thread)
    reply = dap.kernel.get_reply(msg_id)["content"]
    assert reply["status"] == "ok"


@pytest.mark.parametrize("magic", ["", "%%time\n"])
def test_next_reaches_the_cell_last_expression(dap: DapClient, magic: str) -> None:
    code = f"{magic}first = 'a'\nsecond = first * 2\nsecond + '!'\n"
    line = 2 + (1 if magic else 0)
    msg_id, thread, _ = stop_at_breakpoint(dap, code, line)
    dap.ok("next", threadId=thread)
    thread, frames = dap.stopped()
    assert (frames[0]["name"], frames[0]["line"]) == ("<module>", line + 1)
    assert dap.locals(frames[0]["id"])["second"] == "'aa'"
    dap.ok("next", threadId=thread)
    if magic:  # out of the magic's body: back in the cell, on the magic's line
        thread, frames = dap.stopped()
        assert (frames[0]["name"], frames[0]["line"]) == ("<module>", 1)
        dap.ok("next", threadId=thread)
    # past the cell's end: the cell finishes and shows its value
    execution = Execution(dap.kernel.get_reply(msg_id), dap.kernel.collect_iopub(msg_id))
    assert execution.content["status"] == "ok" and result(execution) == "'aa!'"
    assert dap.ok("debugInfo")["stoppedThreads"] == []
