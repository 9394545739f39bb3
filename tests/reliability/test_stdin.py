"""input() and getpass() under the conditions tests/e2e/test_stdin.py does not cover.

Refusal without ``allow_stdin``, interrupts in both modes while a prompt waits, and two
clients with sessions of their own: a prompt goes to the frontend that asked, and only
that frontend's reply answers it.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from tests.harness import TIMEOUT, KernelHarness, merge_streams
from tests.spec import validate


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    with KernelHarness.start() as harness:
        yield harness


@pytest.fixture
def other(kernel: KernelHarness) -> Iterator[BlockingKernelClient]:
    """A second frontend on the same kernel, with a session (and zmq identities) of its own."""
    client = kernel.new_client()
    client.wait_for_ready(timeout=TIMEOUT)
    yield client
    client.stop_channels()


def answer(kernel: KernelHarness, value: str) -> dict:
    request = kernel.kc.get_stdin_msg(timeout=TIMEOUT)
    validate(request, "input_request")
    kernel.kc.input(value)
    return request


def nothing_on_stdin(client: BlockingKernelClient) -> bool:
    try:
        msg = client.get_stdin_msg(timeout=0.2)
    except queue.Empty:
        return True
    raise AssertionError(f"unexpected stdin message {msg['msg_type']}: {msg['content']}")


@pytest.mark.parametrize(
    ("code", "what"),
    [("input('name? ')", "input()"), ("import getpass\ngetpass.getpass()", "getpass()")],
)
def test_without_allow_stdin_input_and_getpass_raise_a_clear_error(
    kernel: KernelHarness, code: str, what: str
) -> None:
    ex = kernel.execute(code, allow_stdin=False)
    assert ex.content["status"] == "error", what
    assert ex.content["ename"] == "StdinNotImplementedError"
    assert "allow_stdin is false" in ex.content["evalue"]
    assert nothing_on_stdin(kernel.kc)
    # the cell may catch it under the name IPython gives it
    ex = kernel.execute(
        f"try:\n    {code.splitlines()[-1]}\nexcept StdinNotImplementedError:\n    print('refused')",
        allow_stdin=False,
    )
    assert ex.content["status"] == "ok"
    assert ex.stream_text() == "refused\n"


def test_getpass_prompt_is_marked_as_a_password(kernel: KernelHarness) -> None:
    msg_id = kernel.kc.execute("import getpass\nsecret = getpass.getpass('PIN: ')\nlen(secret)")
    request = answer(kernel, "1234")
    assert request["content"] == {"prompt": "PIN: ", "password": True}
    assert request["parent_header"]["msg_id"] == msg_id
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    ex_iopub = kernel.collect_iopub(msg_id)
    results = [m for m in ex_iopub if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"] == "4"
    # the secret is never echoed on iopub
    assert not any("1234" in str(m["content"]) for m in ex_iopub if m["msg_type"] != "execute_result")


@pytest.mark.parametrize("mode", ["signal", "message"])
def test_interrupt_while_input_waits_raises_keyboard_interrupt(kernel: KernelHarness, mode: str) -> None:
    msg_id = kernel.kc.execute("value = input('waiting> ')")
    kernel.kc.get_stdin_msg(timeout=TIMEOUT)
    if mode == "signal":
        kernel.process.interrupt()
    else:
        interrupt_id = kernel.send("interrupt_request", {}, channel="control")
        validate(kernel.get_reply(interrupt_id, channel="control"), "interrupt_reply", interrupt_id)
    reply = kernel.get_reply(msg_id, timeout=5)  # ended by the interrupt, not by an answer
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    kernel.collect_iopub(msg_id)
    # A late answer to the abandoned prompt is not taken by the next one.
    kernel.kc.input("too late")
    msg_id = kernel.kc.execute("value = input('again> ')\nvalue")
    request = answer(kernel, "fresh")
    assert request["content"]["prompt"] == "again> "
    assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
    results = [m for m in kernel.collect_iopub(msg_id) if m["msg_type"] == "execute_result"]
    assert results[0]["content"]["data"]["text/plain"] == "'fresh'"


def test_prompt_goes_to_the_frontend_that_asked_and_only_its_reply_answers(
    kernel: KernelHarness, other: BlockingKernelClient
) -> None:
    """Client B runs input(); A sees no prompt, and A's input_reply does not answer B's prompt."""
    a, b = kernel.kc, other
    msg_id = b.execute("value = input('B> ')\nprint('got', value)", allow_stdin=True)
    request = b.get_stdin_msg(timeout=TIMEOUT)
    validate(request, "input_request")
    assert request["content"]["prompt"] == "B> "
    assert request["parent_header"]["msg_id"] == msg_id
    assert nothing_on_stdin(a)
    # A answers (as jupyter_client does, without a parent header) and then with B's parent.
    a.input("from A")
    stolen = a.session.msg("input_reply", {"value": "from A, parented"}, parent=request["header"])
    a.stdin_channel.send(stolen)
    # B's cell still waits: a kernel_info on control answers while the prompt is open...
    info = kernel.request("kernel_info_request", {}, channel="control")
    assert info.content["status"] == "ok"
    with pytest.raises(queue.Empty):
        b.get_shell_msg(timeout=0.3)
    # ...and B's own answer is the one the cell gets.
    b.input("from B")
    reply = b.get_shell_msg(timeout=TIMEOUT)
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "ok"
    cell = []
    while not cell or cell[-1]["msg_type"] != "status" or cell[-1]["content"]["execution_state"] != "idle":
        msg = b.get_iopub_msg(timeout=TIMEOUT)
        validate(msg)
        if msg["parent_header"].get("msg_id") == msg_id:
            cell.append(msg)
    assert merge_streams(cell) == [("stdout", "got from B\n")]
    assert kernel.execute("value").of_type("execute_result")[0]["content"]["data"]["text/plain"] == (
        "'from B'"
    )


@pytest.mark.parametrize("mode", ["signal", "message"])
def test_prompts_answered_and_interrupted_at_random_moments(kernel: KernelHarness, mode: str) -> None:
    """Each prompt is answered, interrupted, or both in a random order: every cell gets one
    reply, every stdin message is valid, and an answered cell gets its own answer."""
    import random

    rng = random.Random(7 if mode == "signal" else 8)
    for round_ in range(30):
        msg_id = kernel.kc.execute(f"print(input('{round_}> '))")
        request = kernel.kc.get_stdin_msg(timeout=TIMEOUT)
        validate(request, "input_request")
        assert request["content"]["prompt"] == f"{round_}> "
        answered = rng.random() < 0.6
        if answered:
            kernel.kc.input(f"answer {round_}")
        time.sleep(rng.uniform(0, 0.005))  # a random moment: not a wait for any condition
        interrupt_id = None
        if not answered or rng.random() < 0.5:
            if mode == "signal":
                kernel.process.interrupt()
            else:
                interrupt_id = kernel.send("interrupt_request", {}, channel="control")
        reply = kernel.get_reply(msg_id)
        content = reply["content"]
        if content["status"] == "ok":
            assert answered
            iopub = kernel.collect_iopub(msg_id)
            assert merge_streams(iopub) == [("stdout", f"answer {round_}\n")]
        else:
            assert content["ename"] == "KeyboardInterrupt", content
            kernel.collect_iopub(msg_id)
        if interrupt_id is not None:
            validate(kernel.get_reply(interrupt_id, channel="control"), "interrupt_reply", interrupt_id)
    assert nothing_on_stdin(kernel.kc)
    assert kernel.execute("1 + 1").content["status"] == "ok"
