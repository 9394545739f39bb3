"""Comms through a real kernel: comm_open, comm_msg, comm_close and comm_info_request."""

from __future__ import annotations

import uuid
from typing import Any

from tests.harness import Execution, KernelHarness

SETUP = """
import comm
received = []
def _target(c, msg):
    received.append(("open", msg["content"]["data"]))
    print("opened", msg["content"]["target_name"])
    def _on_msg(m):
        received.append(("msg", m["content"]["data"], [bytes(b) for b in m["buffers"]]))
        print("got", m["content"]["data"])
    c.on_msg(_on_msg)
    c.on_close(lambda m: received.append(("close", m["content"]["data"])))
    c.send({"hello": "frontend"})
comm.get_comm_manager().register_target("echo", _target)
"""


def send_comm(
    kernel: KernelHarness, msg_type: str, content: dict[str, Any], buffers: list[bytes] | None = None
) -> Execution:
    """Send a comm message (no reply) and collect its iopub messages, busy to idle."""
    kc = kernel.kc
    msg = kc.session.msg(msg_type, content)
    kc.session.send(kc.shell_channel.socket, msg, buffers=buffers or [])
    return Execution({}, kernel.collect_iopub(msg["header"]["msg_id"]))


def test_kernel_side_create_comm_sends_comm_open(kernel: KernelHarness) -> None:
    run = kernel.execute(
        "import comm\nc = comm.create_comm(target_name='kside', data={'x': 1})\n"
        "c.send({'y': 2}, buffers=[b'ab'])"
    )
    assert run.content["status"] == "ok", run.content
    (opened,) = run.of_type("comm_open")
    assert opened["content"]["target_name"] == "kside"
    assert opened["content"]["data"] == {"x": 1}
    (sent,) = run.of_type("comm_msg")
    assert sent["content"]["comm_id"] == opened["content"]["comm_id"]
    assert sent["content"]["data"] == {"y": 2}
    assert [bytes(b) for b in sent["buffers"]] == [b"ab"]
    comms = kernel.request("comm_info_request", {"target_name": "kside"}).content["comms"]
    assert comms == {opened["content"]["comm_id"]: {"target_name": "kside"}}
    closed = kernel.execute("c.close({'bye': True})").of_type("comm_close")
    assert closed[0]["content"]["data"] == {"bye": True}
    assert kernel.request("comm_info_request", {"target_name": "kside"}).content["comms"] == {}


def test_frontend_comm_open_msg_close(kernel: KernelHarness) -> None:
    assert kernel.execute(SETUP).content["status"] == "ok"
    comm_id = uuid.uuid4().hex
    opened = send_comm(kernel, "comm_open", {"comm_id": comm_id, "target_name": "echo", "data": {"a": 1}})
    assert opened.types[0] == "status" and opened.types[-1] == "status"
    assert "opened echo" in opened.stream_text()
    assert opened.of_type("comm_msg")[0]["content"] == {"comm_id": comm_id, "data": {"hello": "frontend"}}
    info = kernel.request("comm_info_request", {}).content["comms"]
    assert info[comm_id] == {"target_name": "echo"}
    assert kernel.request("comm_info_request", {"target_name": "other"}).content["comms"] == {}
    got = send_comm(kernel, "comm_msg", {"comm_id": comm_id, "data": {"b": 2}}, buffers=[b"\x00\x01"])
    assert "got {'b': 2}" in got.stream_text()  # output of the callback goes to the comm message
    send_comm(kernel, "comm_close", {"comm_id": comm_id, "data": {"c": 3}})
    run = kernel.execute("print(received)")
    assert run.stream_text().strip() == repr(
        [("open", {"a": 1}), ("msg", {"b": 2}, [b"\x00\x01"]), ("close", {"c": 3})]
    )
    assert comm_id not in kernel.request("comm_info_request", {}).content["comms"]


def test_unknown_target_gets_comm_close(kernel: KernelHarness) -> None:
    comm_id = uuid.uuid4().hex
    run = send_comm(kernel, "comm_open", {"comm_id": comm_id, "target_name": "nowhere", "data": {}})
    (closed,) = run.of_type("comm_close")
    assert closed["content"]["comm_id"] == comm_id
    assert "nowhere" in closed["content"]["data"]["error"]
    assert comm_id not in kernel.request("comm_info_request", {}).content["comms"]


def test_error_in_on_msg_is_shown_and_kernel_survives(kernel: KernelHarness) -> None:
    code = "import comm\nbad = comm.create_comm(target_name='bad')\nbad.on_msg(lambda m: 1 / 0)\nbad.comm_id"
    run = kernel.execute(code)
    comm_id = run.of_type("execute_result")[0]["content"]["data"]["text/plain"].strip("'")
    got = send_comm(kernel, "comm_msg", {"comm_id": comm_id, "data": {}})
    assert "ZeroDivisionError" in got.stream_text("stderr")
    assert kernel.execute("1 + 1").content["status"] == "ok"
