"""Shell requests sent on control (ipykernel serves them there too): they run on the control
worker, one at a time in order, while the control thread keeps answering.

Order, never time: cells wait on threading.Events that another request sets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import KernelHarness, stream_text
from tests.spec import validate

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 20


def send_control(kernel: KernelHarness, msg_type: str, content: dict[str, Any]) -> str:
    msg = kernel.kc.session.msg(msg_type, content)
    kernel.kc.control_channel.send(msg)
    return str(msg["header"]["msg_id"])


def execute_on_control(kernel: KernelHarness, code: str, stop_on_error: bool = True) -> str:
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
    content.update({"allow_stdin": False, "stop_on_error": stop_on_error})
    return send_control(kernel, "execute_request", content)


def control_replies(kernel: KernelHarness, count: int) -> list[dict[str, Any]]:
    """The next ``count`` control replies, in arrival order, each validated."""
    replies = []
    for _ in range(count):
        reply = kernel.kc.control_channel.get_msg(timeout=TIMEOUT)
        validate(reply)
        replies.append(reply)
    return replies


def test_executes_on_control_run_in_order_with_their_output(fresh_kernel: KernelHarness) -> None:
    fresh_kernel.execute("ran = []")
    sent = [execute_on_control(fresh_kernel, f"ran.append({i}); print('control', {i})") for i in range(3)]
    replies = control_replies(fresh_kernel, 3)
    assert [r["parent_header"]["msg_id"] for r in replies] == sent
    assert [r["content"]["status"] for r in replies] == ["ok"] * 3
    for i, msg_id in enumerate(sent):
        assert stream_text(fresh_kernel.collect_iopub(msg_id)) == f"control {i}\n"
    assert fresh_kernel.execute("print(ran)").stream_text() == "[0, 1, 2]\n"  # one namespace


def test_control_answers_while_an_execute_on_control_runs(fresh_kernel: KernelHarness) -> None:
    fresh_kernel.execute("import threading; gate = threading.Event()")
    waiting = execute_on_control(fresh_kernel, "print('released', gate.wait(15))")
    fresh_kernel.wait_for_iopub(
        lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == waiting
    )
    info = send_control(fresh_kernel, "kernel_info_request", {})
    [info_reply] = control_replies(fresh_kernel, 1)
    assert info_reply["parent_header"]["msg_id"] == info  # before the running execute's reply
    fresh_kernel.execute("gate.set()")  # the main shell is free meanwhile
    [done] = control_replies(fresh_kernel, 1)
    assert done["parent_header"]["msg_id"] == waiting
    assert stream_text(fresh_kernel.collect_iopub(waiting)) == "released True\n"


def test_complete_and_inspect_on_control(kernel: KernelHarness) -> None:
    kernel.execute("fk_control_value = 42")
    complete = send_control(kernel, "complete_request", {"code": "fk_control_v", "cursor_pos": 12})
    inspect = send_control(kernel, "inspect_request", {"code": "len", "cursor_pos": 3, "detail_level": 0})
    by_parent = {r["parent_header"]["msg_id"]: r for r in control_replies(kernel, 2)}
    assert "fk_control_value" in by_parent[complete]["content"]["matches"]
    assert by_parent[inspect]["content"]["found"] is True


def test_shutdown_answers_executes_running_and_queued_on_control(fresh_kernel: KernelHarness) -> None:
    fresh_kernel.execute("import threading; gate = threading.Event()")
    # Pure Python: the interrupt at shutdown lands at once (a blocking call ends it when it returns).
    # Not stop_on_error: the queued request is not aborted by the interrupted one's error.
    running = execute_on_control(fresh_kernel, "while not gate.is_set(): pass", stop_on_error=False)
    fresh_kernel.wait_for_iopub(
        lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == running
    )
    queued = execute_on_control(fresh_kernel, "print('never')")
    # Control reads in order: once this is answered, the queued request is in the worker's queue.
    info = send_control(fresh_kernel, "kernel_info_request", {})
    assert control_replies(fresh_kernel, 1)[0]["parent_header"]["msg_id"] == info
    shutdown = fresh_kernel.send("shutdown_request", {"restart": False})
    fresh_kernel.get_reply(shutdown)
    by_parent = {r["parent_header"]["msg_id"]: r for r in control_replies(fresh_kernel, 2)}
    assert by_parent[running]["content"]["status"] == "error"
    assert by_parent[running]["content"]["ename"] == "KeyboardInterrupt"
    assert by_parent[queued]["content"]["status"] == "error"
    assert by_parent[queued]["content"]["ename"] == "KernelShuttingDown"
    assert fresh_kernel.wait_for_exit() == 0


def test_stop_on_error_on_control_aborts_the_control_queue_only(fresh_kernel: KernelHarness) -> None:
    fresh_kernel.execute("import threading; gate = threading.Event()")
    failing = execute_on_control(fresh_kernel, "gate.wait(15); 1/0")
    queued = execute_on_control(fresh_kernel, "print('never')")
    fresh_kernel.execute("gate.set()")
    assert fresh_kernel.execute("print('main shell runs')").stream_text() == "main shell runs\n"
    replies = control_replies(fresh_kernel, 2)
    assert [r["parent_header"]["msg_id"] for r in replies] == [failing, queued]
    assert replies[0]["content"]["ename"] == "ZeroDivisionError"
    assert replies[1]["content"]["status"] in {"error", "aborted"}
    assert "never" not in stream_text(fresh_kernel.collect_iopub(queued))
