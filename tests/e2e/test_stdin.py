"""input() and getpass() in cells, answered over the stdin channel."""

from __future__ import annotations

from tests.harness import TIMEOUT, KernelHarness
from tests.spec import validate


def _answer_prompt(kernel: KernelHarness, value: str) -> dict:
    request = kernel.kc.get_stdin_msg(timeout=TIMEOUT)
    validate(request, "input_request")
    kernel.kc.input(value)
    return request


def test_input_prompts_the_frontend_and_returns_its_answer(kernel: KernelHarness) -> None:
    msg_id = kernel.kc.execute("name = input('name? '); print('hello', name)", allow_stdin=True)
    request = _answer_prompt(kernel, "bob")
    assert request["content"] == {"prompt": "name? ", "password": False}
    assert request["parent_header"]["msg_id"] == msg_id
    reply = kernel.get_reply(msg_id)
    assert reply["content"]["status"] == "ok"
    iopub = kernel.collect_iopub(msg_id)
    assert "".join(m["content"]["text"] for m in iopub if m["msg_type"] == "stream") == "hello bob\n"


def test_output_before_the_prompt_is_sent_before_it(kernel: KernelHarness) -> None:
    msg_id = kernel.kc.execute("print('first'); input('> ')", allow_stdin=True)
    kernel.wait_for_iopub(lambda m: m["msg_type"] == "stream" and "first" in m["content"]["text"])
    _answer_prompt(kernel, "x")
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    kernel.collect_iopub(msg_id)


def test_getpass_asks_for_a_password(kernel: KernelHarness) -> None:
    msg_id = kernel.kc.execute("import getpass; secret = getpass.getpass()", allow_stdin=True)
    request = _answer_prompt(kernel, "hunter2")
    assert request["content"] == {"prompt": "Password: ", "password": True}
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    kernel.collect_iopub(msg_id)
    assert kernel.execute("secret").of_type("execute_result")[0]["content"]["data"] == {
        "text/plain": "'hunter2'"
    }


def test_input_without_allow_stdin_raises_a_clear_error(kernel: KernelHarness) -> None:
    ex = kernel.execute("input('name? ')", allow_stdin=False)
    assert ex.content["status"] == "error"
    assert ex.content["ename"] == "StdinNotImplementedError"
    assert "allow_stdin" in ex.content["evalue"]


def test_interrupt_ends_a_pending_input(fresh_kernel: KernelHarness) -> None:
    msg_id = fresh_kernel.kc.execute("input('waiting> ')", allow_stdin=True)
    fresh_kernel.kc.get_stdin_msg(timeout=TIMEOUT)  # the kernel is now blocked on the prompt
    fresh_kernel.process.interrupt()
    reply = fresh_kernel.get_reply(msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    fresh_kernel.collect_iopub(msg_id)
    assert fresh_kernel.execute("1 + 1").content["status"] == "ok"
