"""fastkernel.comms and the kernel's comm handlers, in-process with a recording outlet (no sockets)."""

from __future__ import annotations

from typing import Any

import comm
import pytest

from fastkernel import comms
from fastkernel.kernel import Kernel
from fastkernel.messages import MessageFactory
from fastkernel.outputs import output_to
from tests.core.test_dispatch import RecordingOutlet

frontend = MessageFactory()


def request(msg_type: str, content: dict[str, Any], buffers: list[bytes] | None = None) -> dict[str, Any]:
    msg = frontend.msg(msg_type, content, buffers=buffers)
    msg["idents"] = [b"client"]
    return msg


@pytest.fixture
def setup() -> tuple[Kernel, RecordingOutlet]:
    outlet = RecordingOutlet()
    kernel = Kernel(outlet)
    kernel.runtime  # noqa: B018  # built now: comm is already imported here, so this installs comms at once
    return kernel, outlet


def test_install_patches_the_comm_package(setup: tuple[Kernel, RecordingOutlet]) -> None:
    assert comm.create_comm is comms._create_comm
    assert isinstance(comm.get_comm_manager(), comms.Manager)


def test_create_comm_publishes_comm_open_to_the_current_request(
    setup: tuple[Kernel, RecordingOutlet],
) -> None:
    kernel, outlet = setup
    cell = request("execute_request", {"code": ""})
    with output_to(cell):
        c = comm.create_comm(target_name="t", data={"a": 1}, buffers=[b"xy"])
        c.send({"b": 2})
    opened, sent = outlet.of_type("comm_open")[0], outlet.of_type("comm_msg")[0]
    assert opened.parent_id == sent.parent_id == cell["header"]["msg_id"]
    assert opened.content["target_name"] == "t" and opened.content["data"] == {"a": 1}
    assert opened.msg["buffers"] == [b"xy"]
    assert comms.info(None) == {c.comm_id: {"target_name": "t"}}
    assert comms.info("other") == {}
    c.close()
    assert outlet.of_type("comm_close")[0].content["comm_id"] == c.comm_id
    assert comms.info(None) == {}


def test_comm_messages_get_busy_idle_and_no_reply(setup: tuple[Kernel, RecordingOutlet]) -> None:
    kernel, outlet = setup
    seen: list[Any] = []
    comm.get_comm_manager().register_target("echo", lambda c, msg: c.on_msg(seen.append))
    kernel.dispatch("shell", request("comm_open", {"comm_id": "c1", "target_name": "echo", "data": {}}))
    msg = request("comm_msg", {"comm_id": "c1", "data": {"v": 1}}, buffers=[b"\x00"])
    kernel.dispatch("shell", msg)
    assert outlet.for_parent(msg) == ["status:busy", "status:idle"]
    assert not [s for s in outlet.sent if s.channel == "shell"]
    assert seen[0]["content"]["data"] == {"v": 1} and seen[0]["buffers"] == [b"\x00"]
    info = request("comm_info_request", {"target_name": "echo"})
    kernel.dispatch("shell", info)
    assert outlet.reply().content == {"status": "ok", "comms": {"c1": {"target_name": "echo"}}}
    kernel.dispatch("shell", request("comm_close", {"comm_id": "c1", "data": {}}))
    assert comms.info(None) == {}


def test_unknown_target_is_closed(setup: tuple[Kernel, RecordingOutlet]) -> None:
    kernel, outlet = setup
    msg = request("comm_open", {"comm_id": "c2", "target_name": "missing", "data": {}})
    kernel.dispatch("shell", msg)
    assert outlet.for_parent(msg) == ["status:busy", "comm_close", "status:idle"]
    assert "missing" in outlet.of_type("comm_close")[0].content["data"]["error"]
    assert comms.info(None) == {}


def test_callback_error_goes_to_stderr_of_the_comm_message(setup: tuple[Kernel, RecordingOutlet]) -> None:
    kernel, outlet = setup
    c = comm.create_comm(target_name="bad")
    c.on_msg(lambda m: 1 / 0)
    msg = request("comm_msg", {"comm_id": c.comm_id, "data": {}})
    kernel.dispatch("shell", msg)
    (stream,) = [s for s in outlet.of_type("stream") if s.parent_id == msg["header"]["msg_id"]]
    assert stream.content["name"] == "stderr" and "ZeroDivisionError" in stream.content["text"]


def test_bad_comm_message_is_ignored(setup: tuple[Kernel, RecordingOutlet]) -> None:
    kernel, outlet = setup
    msg = request("comm_msg", {"data": {}})
    kernel.dispatch("shell", msg)
    assert outlet.for_parent(msg) == ["status:busy", "status:idle"]
