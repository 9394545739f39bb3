"""Non-execute requests and protocol robustness, through a real kernel subprocess."""

from __future__ import annotations

import queue
import sys
from typing import Any

import pytest
from jupyter_kernel_test.msgspec_v5 import get_error_reply_validator, msg_structure_validator

from tests.harness import Execution, KernelHarness
from tests.spec import PROTOCOL_VERSION, validate

# -- kernel_info -------------------------------------------------------------


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_kernel_info(kernel: KernelHarness, channel: str) -> None:
    ex = kernel.request("kernel_info_request", {}, channel=channel)
    reply = ex.reply
    validate(reply, "kernel_info_reply")
    content = ex.content
    assert content["status"] == "ok"
    assert content["protocol_version"] == "5.5"
    assert content["implementation"] == "fastkernel"
    assert isinstance(content["implementation_version"], str) and content["implementation_version"]
    info = content["language_info"]
    assert info["name"] == "python"
    assert info["version"] == ".".join(map(str, sys.version_info[:3]))
    assert info["mimetype"] == "text/x-python"
    assert info["file_extension"] == ".py"
    assert isinstance(info["pygments_lexer"], str) and info["pygments_lexer"]
    assert isinstance(info["codemirror_mode"], (str, dict)) and info["codemirror_mode"]
    assert info["nbconvert_exporter"] == "python"
    assert isinstance(content["banner"], str) and content["banner"]
    assert isinstance(content["help_links"], list)
    for link in content["help_links"]:
        assert set(link) >= {"text", "url"}
    assert isinstance(content["supported_features"], list)
    assert ex.types == ["status", "status"]
    assert [m["content"]["execution_state"] for m in ex.iopub] == ["busy", "idle"]


def test_kernel_info_reply_header_carries_protocol_version(kernel: KernelHarness) -> None:
    ex = kernel.request("kernel_info_request", {})
    assert ex.reply["header"]["version"] == PROTOCOL_VERSION
    assert ex.reply["header"]["msg_type"] == "kernel_info_reply"


# -- is_complete, connect, comm_info ----------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "indent"),
    [
        ("x = 1", "complete", None),
        ("for i in range(3):", "incomplete", "    "),
        ("def f():\n    if True:", "incomplete", "        "),
        ("x = (1,", "incomplete", ""),
        ("x = )", "invalid", None),
    ],
)
def test_is_complete(kernel: KernelHarness, code: str, status: str, indent: str | None) -> None:
    ex = kernel.request("is_complete_request", {"code": code})
    validate(ex.reply, "is_complete_reply")
    assert ex.content["status"] == status
    if indent is not None:
        assert ex.content["indent"] == indent


def test_connect_request_returns_the_connection_file_ports(kernel: KernelHarness) -> None:
    ex = kernel.request("connect_request", {})
    validate(ex.reply, "connect_reply")
    info = kernel.process.connection_info()
    assert ex.content["status"] == "ok"
    for name in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
        assert ex.content[name] == info[name], name


def test_comm_info_request(kernel: KernelHarness) -> None:
    ex = kernel.request("comm_info_request", {})
    validate(ex.reply, "comm_info_reply")
    assert ex.content == {"status": "ok", "comms": {}}
    ex = kernel.request("comm_info_request", {"target_name": "some.target"})
    assert ex.content == {"status": "ok", "comms": {}}


# -- malformed requests --------------------------------------------------------


def _validate_any_error_reply(msg: dict[str, Any], parent_id: str | None = None) -> None:
    """Validation for replies whose type the spec does not know (``foo_reply``)."""
    msg_structure_validator.validate(msg)
    assert msg["header"]["version"] == PROTOCOL_VERSION
    get_error_reply_validator(5).validate(msg["content"])
    if parent_id is not None:
        assert msg["parent_header"]["msg_id"] == parent_id


def _assert_no_more_shell_replies(kernel: KernelHarness) -> None:
    """The next shell message is the reply to a fresh kernel_info request: nothing else queued."""
    msg_id = kernel.kc.kernel_info()
    msg = kernel.kc.get_shell_msg(timeout=10)
    validate(msg)
    assert msg["parent_header"]["msg_id"] == msg_id, f"unexpected extra shell message: {msg}"
    kernel.collect_iopub(msg_id)


def _assert_kernel_works(kernel: KernelHarness) -> None:
    ex = kernel.execute("1 + 1")
    assert ex.content["status"] == "ok"
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "2"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"silent": False}, ["code", "missing"]),
        ({"code": 5}, ["code", "str", "int"]),
        ([1, 2, 3], ["object", "list"]),
        ("just a string", ["object", "str"]),
        (None, ["object"]),
    ],
    ids=["missing-code", "code-int", "content-list", "content-str", "content-null"],
)
def test_malformed_execute_request_gets_one_error_reply(
    kernel: KernelHarness, content: Any, words: list[str]
) -> None:
    msg_id = kernel.send("execute_request", content)
    reply = kernel.get_reply(msg_id, timeout=10)
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "error"
    evalue = reply["content"]["evalue"]
    for word in words:
        assert word in evalue, (word, evalue)
    iopub = kernel.collect_iopub(msg_id, timeout=10)
    assert [(m["msg_type"], m["content"].get("execution_state")) for m in iopub] == [
        ("status", "busy"),
        ("status", "idle"),
    ]
    _assert_no_more_shell_replies(kernel)
    _assert_kernel_works(kernel)


def test_execute_request_with_wrongly_typed_optional_field(kernel: KernelHarness) -> None:
    msg_id = kernel.send("execute_request", {"code": "1", "user_expressions": ["not", "a", "dict"]})
    reply = kernel.get_reply(msg_id, timeout=10)
    assert reply["content"]["status"] == "error"
    assert "user_expressions" in reply["content"]["evalue"]
    kernel.collect_iopub(msg_id, timeout=10)
    _assert_no_more_shell_replies(kernel)
    _assert_kernel_works(kernel)


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_unknown_request_type_gets_error_reply(kernel: KernelHarness, channel: str) -> None:
    msg_id = kernel.send("foo_request", {}, channel=channel)
    reply = kernel.get_reply(msg_id, channel=channel, timeout=10, check=_validate_any_error_reply)
    assert reply["msg_type"] == "foo_reply"
    assert reply["content"]["status"] == "error"
    assert "foo_request" in reply["content"]["evalue"]
    iopub = kernel.collect_iopub(msg_id, timeout=10)
    assert [m["content"].get("execution_state") for m in iopub] == ["busy", "idle"]
    if channel == "shell":
        _assert_no_more_shell_replies(kernel)
    else:
        check_id = kernel.send("kernel_info_request", {}, channel="control")
        msg = kernel.kc.control_channel.get_msg(timeout=10)
        validate(msg, "kernel_info_reply", check_id)
        kernel.collect_iopub(check_id)
    _assert_kernel_works(kernel)


def test_unknown_non_request_type_is_ignored(kernel: KernelHarness) -> None:
    msg_id = kernel.send("foo_reply", {"status": "ok"})
    # Nothing may come back for it: the next shell message answers the next request,
    # and iopub carries nothing parented to it.
    _assert_no_more_shell_replies(kernel)
    _assert_kernel_works(kernel)
    assert [m for m in kernel.stray if m["parent_header"].get("msg_id") == msg_id] == []
    assert kernel.drain_iopub(timeout=0.1) == []


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b""], ids=["bad-json", "bad-utf8", "empty"])
def test_unparseable_content_gets_one_error_reply(kernel: KernelHarness, content: bytes) -> None:
    msg_id = kernel.send_frames("execute_request", content=content)
    reply = kernel.get_reply(msg_id, timeout=10)
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "error"
    assert "content" in reply["content"]["evalue"]
    assert "JSON" in reply["content"]["evalue"]
    iopub = kernel.collect_iopub(msg_id, timeout=10)
    assert [m["content"].get("execution_state") for m in iopub] == ["busy", "idle"]
    _assert_no_more_shell_replies(kernel)
    _assert_kernel_works(kernel)


@pytest.mark.parametrize("part", ["parent_header", "metadata"])
def test_unparseable_side_frames_still_get_exactly_one_reply(kernel: KernelHarness, part: str) -> None:
    msg_id = kernel.send_frames("kernel_info_request", **{part: b"{not json"})
    reply = kernel.get_reply(msg_id, timeout=10)
    assert reply["content"]["status"] in ("ok", "error")
    kernel.collect_iopub(msg_id, timeout=10)
    _assert_no_more_shell_replies(kernel)
    _assert_kernel_works(kernel)


DEEP_JSON = b"[" * 5000 + b"]" * 5000


def test_deeply_nested_content_on_shell_is_answered(fresh_kernel: KernelHarness) -> None:
    msg_id = fresh_kernel.send_frames("execute_request", content=DEEP_JSON)
    reply = fresh_kernel.get_reply(msg_id, timeout=2)
    assert reply["content"]["status"] == "error"
    fresh_kernel.collect_iopub(msg_id, timeout=2)
    _assert_kernel_works(fresh_kernel)


def test_deeply_nested_content_on_control_is_answered(fresh_kernel: KernelHarness) -> None:
    msg_id = fresh_kernel.send_frames("kernel_info_request", "control", content=DEEP_JSON)
    try:
        reply = fresh_kernel.get_reply(msg_id, channel="control", timeout=2)
        assert reply["content"]["status"] == "error"
        info = fresh_kernel.request("kernel_info_request", {}, channel="control")
        assert info.content["status"] == "ok"
    except BaseException:
        fresh_kernel.process.kill()  # control is dead: a polite shutdown would hang
        raise


# -- iopub_welcome -------------------------------------------------------------


def test_new_iopub_subscriber_gets_welcome(kernel: KernelHarness) -> None:
    kc = kernel.new_client(shell=False, stdin=False, hb=False, control=False)
    try:
        msg = kc.get_iopub_msg(timeout=10)
        validate(msg, "iopub_welcome")
        assert msg["content"] == {"subscription": ""}
        # exactly one welcome per subscription
        with pytest.raises(queue.Empty):
            kc.get_iopub_msg(timeout=0.2)
    finally:
        kc.stop_channels()


def test_welcome_for_a_new_subscriber_does_not_disturb_existing_ones(kernel: KernelHarness) -> None:
    """XPUB sends the welcome to every matching subscriber; old clients just see a valid message."""
    kc = kernel.new_client(shell=False, stdin=False, hb=False, control=False)
    try:
        validate(kc.get_iopub_msg(timeout=10), "iopub_welcome")
    finally:
        kc.stop_channels()
    for msg in kernel.drain_iopub(timeout=0.1):
        assert msg["msg_type"] == "iopub_welcome", msg
    ex: Execution = kernel.execute("'still fine'")
    assert ex.content["status"] == "ok"
