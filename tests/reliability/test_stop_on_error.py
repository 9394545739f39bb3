"""stop_on_error: what a frontend queued behind a failing cell.

Queued execute_requests are answered without being run (an error reply, or the legacy
``aborted`` by configuration); other requests queued behind (kernel_info, complete, ...) are
answered as usual; ``stop_on_error: false`` runs the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import KernelHarness
from tests.spec import validate

# The failing cell keeps the kernel busy long enough for the requests sent right after it to
# be queued on the kernel's shell socket when it fails (they are sent within milliseconds).
FAILING = "import time\ntime.sleep(0.5)\n1 / 0"


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    with KernelHarness.start() as harness:
        yield harness


@pytest.fixture(scope="module")
def legacy_kernel() -> Iterator[KernelHarness]:
    with KernelHarness.start("--stop-on-error-reply=aborted") as harness:
        yield harness


def queue_behind_failure(kernel: KernelHarness, stop_on_error: bool) -> tuple[str, list[tuple[str, str]]]:
    """Send the failing cell and, right behind it, a mix of requests; (failing id, [(type, id)])."""
    kernel.execute("ran = []")
    failing = kernel.kc.execute(FAILING, stop_on_error=stop_on_error)
    queued = [
        ("execute_request", kernel.kc.execute("ran.append(1)")),
        ("kernel_info_request", kernel.send("kernel_info_request", {})),
        ("complete_request", kernel.send("complete_request", {"code": "import o", "cursor_pos": 8})),
        ("execute_request", kernel.kc.execute("ran.append(2)\nprint('ran 2')")),
        ("is_complete_request", kernel.send("is_complete_request", {"code": "for x in y:"})),
        ("execute_request", kernel.kc.execute("ran.append(3)", silent=True)),
    ]
    return failing, queued


def replies_in_order(kernel: KernelHarness, ids: list[str]) -> list[dict[str, Any]]:
    """Shell replies arrive in request order; check that, and that each has busy ... idle."""
    replies = []
    for msg_id in ids:
        msg = kernel.kc.shell_channel.get_msg(timeout=20)  # validated below: 'aborted' is not in the schema
        assert msg["parent_header"]["msg_id"] == msg_id, "replies out of order"
        if msg["content"].get("status") == "aborted":
            # jupyter_client's schema knows 'abort' only (jupyter_client#1063): the envelope
            assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "aborted"}
            assert msg["header"]["version"] and msg["metadata"]["status"] == "aborted"
        else:
            validate(msg, parent_id=msg_id)
        replies.append(msg)
    for msg_id in ids:
        states = [
            m["content"]["execution_state"] for m in kernel.collect_iopub(msg_id) if m["msg_type"] == "status"
        ]
        assert states == ["busy", "idle"]
    return replies


def test_queued_executes_are_not_run_and_other_requests_are_answered(kernel: KernelHarness) -> None:
    failing, queued = queue_behind_failure(kernel, stop_on_error=True)
    first, *rest = replies_in_order(kernel, [failing, *(msg_id for _, msg_id in queued)])
    assert first["content"]["ename"] == "ZeroDivisionError"
    for (msg_type, _), reply in zip(queued, rest, strict=True):
        content = reply["content"]
        if msg_type == "execute_request":
            assert content["status"] == "error"
            assert content["ename"] == "ExecutionAborted"
            assert "stop_on_error" in content["evalue"]
            assert content["execution_count"] == first["content"]["execution_count"]
        elif msg_type != "is_complete_request":
            assert content["status"] == "ok", (msg_type, content)
    assert rest[1]["content"]["implementation"] == "fastkernel"
    assert "os" in rest[2]["content"]["matches"]
    assert rest[4]["content"]["status"] == "incomplete"
    # none of them ran, and what comes next runs as usual
    assert kernel.execute("ran").of_type("execute_result")[0]["content"]["data"]["text/plain"] == "[]"


def test_legacy_aborted_status_by_configuration(legacy_kernel: KernelHarness) -> None:
    failing, queued = queue_behind_failure(legacy_kernel, stop_on_error=True)
    first, *rest = replies_in_order(legacy_kernel, [failing, *(msg_id for _, msg_id in queued)])
    assert first["content"]["status"] == "error"
    for (msg_type, _), reply in zip(queued, rest, strict=True):
        expected = {"execute_request": "aborted", "is_complete_request": "incomplete"}.get(msg_type, "ok")
        assert reply["content"]["status"] == expected, (msg_type, reply["content"])
    ex = legacy_kernel.execute("ran")
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "[]"


def test_stop_on_error_false_runs_the_queue(kernel: KernelHarness) -> None:
    failing, queued = queue_behind_failure(kernel, stop_on_error=False)
    first, *rest = replies_in_order(kernel, [failing, *(msg_id for _, msg_id in queued)])
    assert first["content"]["ename"] == "ZeroDivisionError"
    assert [reply["content"]["status"] for reply in rest] == ["ok", "ok", "ok", "ok", "incomplete", "ok"]
    ex = kernel.execute("ran")
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "[1, 2, 3]"


def test_an_interrupted_cell_aborts_the_queue_too(kernel: KernelHarness) -> None:
    kernel.execute("ran = []")
    running = kernel.kc.execute("import time\nprint('started', flush=True)\ntime.sleep(30)")
    queued = kernel.kc.execute("ran.append(1)")
    kernel.wait_for_iopub(lambda m: m["parent_header"].get("msg_id") == running and m["msg_type"] == "stream")
    kernel.process.interrupt()
    first, second = replies_in_order(kernel, [running, queued])
    assert first["content"]["ename"] == "KeyboardInterrupt"
    assert second["content"]["ename"] == "ExecutionAborted"
    assert kernel.execute("ran").of_type("execute_result")[0]["content"]["data"]["text/plain"] == "[]"
