"""Interrupts (signal and message mode) and shutdown, each on a kernel of its own."""

from __future__ import annotations

import pytest

from tests.harness import Execution, KernelHarness
from tests.kernels import Kernels
from tests.spec import validate

SLEEPER = "print('started')\nimport time\ntime.sleep(30)\nprint('not interrupted')"


def _start_sleeper(kernel: KernelHarness) -> str:
    """Run a 30 s cell and return once it is running (its 'started' output has arrived)."""
    msg_id = kernel.kc.execute(SLEEPER)
    started = kernel.wait_for_iopub(
        lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream", timeout=10
    )
    assert started["content"]["text"] == "started\n"
    return msg_id


def _assert_interrupted(kernel: KernelHarness, msg_id: str) -> None:
    reply = kernel.get_reply(msg_id, timeout=5)  # ended by the interrupt, long before the sleep
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    ex = Execution(reply, kernel.collect_iopub(msg_id, timeout=5))
    assert ex.types == ["status", "execute_input", "stream", "error", "status"], ex.types
    assert ex.of_type("error")[0]["content"]["ename"] == "KeyboardInterrupt"
    assert "not interrupted" not in ex.stream_text()


def _assert_kernel_works(kernel: KernelHarness) -> None:
    ex = kernel.execute("1 + 1")
    assert ex.content["status"] == "ok"
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "2"
    assert ex.of_type("error") == []


def test_sigint_interrupts_a_running_cell(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = _start_sleeper(kernel)
    kernel.process.interrupt()
    _assert_interrupted(kernel, msg_id)
    _assert_kernel_works(kernel)
    # and a second interrupt works as well as the first
    msg_id = _start_sleeper(kernel)
    kernel.process.interrupt()
    _assert_interrupted(kernel, msg_id)
    _assert_kernel_works(kernel)


def test_sigint_while_idle_is_a_no_op(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    kernel.process.interrupt()
    # A shell round trip that runs no user code: the signal, already pending, is handled by now.
    ex = kernel.request("kernel_info_request", {})
    assert ex.content["status"] == "ok"
    assert kernel.process.alive()
    _assert_kernel_works(kernel)
    assert [m for m in kernel.stray if m["msg_type"] == "error"] == []
    assert kernel.drain_iopub(timeout=0.1) == []


def test_interrupt_request_on_control_interrupts_a_running_cell(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = _start_sleeper(kernel)
    interrupt_id = kernel.send("interrupt_request", {}, channel="control")
    interrupt_reply = kernel.get_reply(interrupt_id, channel="control", timeout=5)
    validate(interrupt_reply, "interrupt_reply", interrupt_id)
    assert interrupt_reply["content"]["status"] == "ok"
    _assert_interrupted(kernel, msg_id)
    interrupt_iopub = kernel.collect_iopub(interrupt_id, timeout=5)
    assert [m["content"]["execution_state"] for m in interrupt_iopub] == ["busy", "idle"]
    _assert_kernel_works(kernel)


def test_interrupt_request_while_idle_is_harmless(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    ex = kernel.request("interrupt_request", {}, channel="control")
    validate(ex.reply, "interrupt_reply")
    assert ex.content["status"] == "ok"
    kernel.request("kernel_info_request", {})
    _assert_kernel_works(kernel)


def test_control_is_served_while_a_cell_runs(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = _start_sleeper(kernel)
    info = kernel.request("kernel_info_request", {}, channel="control")
    assert info.content["status"] == "ok"
    kernel.process.interrupt()
    _assert_interrupted(kernel, msg_id)


@pytest.mark.parametrize("restart", [True, False])
def test_shutdown_on_control_echoes_restart_and_exits_cleanly(
    fresh_kernel: KernelHarness, restart: bool
) -> None:
    kernel = fresh_kernel
    msg_id = kernel.send("shutdown_request", {"restart": restart}, channel="control")
    reply = kernel.get_reply(msg_id, channel="control", timeout=5)
    validate(reply, "shutdown_reply", msg_id)
    assert reply["content"] == {"status": "ok", "restart": restart}
    assert kernel.wait_for_exit(timeout=5) == 0


def test_shutdown_on_shell_exits_cleanly(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = kernel.send("shutdown_request", {"restart": False}, channel="shell")
    reply = kernel.get_reply(msg_id, channel="shell", timeout=5)
    validate(reply, "shutdown_reply", msg_id)
    assert reply["content"] == {"status": "ok", "restart": False}
    iopub = kernel.collect_iopub(msg_id, timeout=5)
    assert [m["content"]["execution_state"] for m in iopub] == ["busy", "idle"]
    assert kernel.wait_for_exit(timeout=5) == 0


def test_shutdown_while_a_cell_runs(fresh_kernel: KernelHarness) -> None:
    kernel = fresh_kernel
    msg_id = _start_sleeper(kernel)
    shutdown_id = kernel.send("shutdown_request", {"restart": False}, channel="control")
    reply = kernel.get_reply(shutdown_id, channel="control", timeout=5)
    assert reply["content"]["status"] == "ok"
    assert kernel.wait_for_exit(timeout=5) == 0
    # the running cell was interrupted and still answered
    execute_reply = kernel.get_reply(msg_id, timeout=5)
    assert execute_reply["content"]["status"] == "error"
    assert execute_reply["content"]["ename"] == "KeyboardInterrupt"


def test_output_before_the_first_iopub_subscriber_is_held_for_it(kernels: Kernels) -> None:
    """A client that sends a cell before its iopub socket has subscribed still gets its output."""
    kc = kernels.start().client(shell=True, iopub=False, stdin=False, hb=False, control=False)
    msg_id = kc.execute("print('early bird')")
    reply = kc.get_shell_msg(timeout=20)
    validate(reply, "execute_reply", msg_id)
    kc.iopub_channel.start()
    seen = []
    while not (
        seen
        and seen[-1]["msg_type"] == "status"
        and seen[-1]["parent_header"].get("msg_id") == msg_id
        and seen[-1]["content"]["execution_state"] == "idle"
    ):
        msg = kc.get_iopub_msg(timeout=10)
        validate(msg)
        seen.append(msg)
    types = [m["msg_type"] for m in seen]
    assert types[0] == "iopub_welcome", types
    assert "status" in types[1:] and seen[1]["content"].get("execution_state") == "starting", types
    cell = [m for m in seen if m["parent_header"].get("msg_id") == msg_id]
    assert [m["msg_type"] for m in cell] == ["status", "execute_input", "stream", "status"]
    assert cell[2]["content"]["text"] == "early bird\n"
