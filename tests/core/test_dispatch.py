"""The kernel core in-process: requests in through ``Kernel.dispatch``, messages out to a recording outlet.

The outlet is the core's designed seam to the transport, so recording its calls shows exactly
what a frontend would receive, in order. Every message the core sends is validated against the
message spec when the test ends.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from jupyter_kernel_test import msgspec_v5

from fastkernel import PROTOCOL_VERSION
from fastkernel.kernel import Kernel
from fastkernel.messages import MessageFactory
from tests.spec import validate

Message = dict[str, Any]

PORTS = {"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005}
CLIENT_IDENT = [b"client-routing-id"]


@dataclass
class Sent:
    channel: str
    msg: Message
    idents: list[bytes] | None

    @property
    def msg_type(self) -> str:
        return str(self.msg["header"]["msg_type"])

    @property
    def content(self) -> Any:
        return self.msg["content"]

    @property
    def parent_id(self) -> str | None:
        return self.msg["parent_header"].get("msg_id")


class RecordingOutlet:
    """Implements fastkernel.interfaces.Outlet by recording every call, in order."""

    def __init__(self) -> None:
        self.calls: list[Any] = []  # Sent for send(), else (method name, *args)
        self.queued: list[Message] = []  # what drain_shell() hands back

    def send(self, channel: str, msg: Message, idents: list[bytes] | None = None) -> None:
        self.calls.append(Sent(channel, copy.deepcopy(msg), idents))

    def flush_iopub(self) -> None:
        self.calls.append(("flush_iopub",))

    def schedule_stream_flush(self, delay: float, flush: Callable[[], None]) -> None:
        self.calls.append(("schedule_stream_flush", delay))

    def wait_for_room(self) -> None:
        pass

    def shielded(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def drain_shell(self) -> list[Message]:
        self.calls.append(("drain_shell",))
        queued, self.queued = self.queued, []
        return queued

    def interrupt_main(self) -> None:
        self.calls.append(("interrupt_main",))

    def stop(self) -> None:
        self.calls.append(("stop",))

    def drain_stdin(self) -> None:
        self.calls.append(("drain_stdin",))

    def next_stdin(self) -> Message:
        self.calls.append(("next_stdin",))
        raise AssertionError("no test here sends input")

    # -- views ------------------------------------------------------------------------

    @property
    def sent(self) -> list[Sent]:
        return [c for c in self.calls if isinstance(c, Sent)]

    def trace(self) -> list[str]:
        """Sends as 'channel:msg_type' ('iopub:status:busy' for status), plus outlet calls.

        The scheduling of timed stream flushes and the drain of the shell queue are left out:
        when they happen is the transport's business, not something a frontend sees.
        """
        out = []
        for call in self.calls:
            if isinstance(call, Sent):
                name = f"{call.channel}:{call.msg_type}"
                if call.msg_type == "status":
                    name += ":" + call.content["execution_state"]
                out.append(name)
            elif call[0] not in ("schedule_stream_flush", "drain_shell"):
                out.append(call[0])
        return out

    def of_type(self, msg_type: str) -> list[Sent]:
        return [s for s in self.sent if s.msg_type == msg_type]

    def reply(self) -> Sent:
        (reply,) = [s for s in self.sent if s.msg_type.endswith("_reply")]
        return reply

    def for_parent(self, request: Message) -> list[str]:
        return [
            f"{s.msg_type}:{s.content['execution_state']}" if s.msg_type == "status" else s.msg_type
            for s in self.sent
            if s.parent_id == request["header"]["msg_id"]
        ]

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if not isinstance(c, Sent) and c[0] == name)

    def clear(self) -> None:
        self.calls.clear()


def check_spec(sent: Sent) -> None:
    """Validate one sent message against the message spec (jupyter_kernel_test's schemas)."""
    msg = {k: sent.msg[k] for k in ("header", "parent_header", "metadata", "content", "buffers")}
    msg_type = sent.msg_type
    assert sent.msg["msg_type"] == msg_type
    status = msg["content"].get("status") if isinstance(msg["content"], dict) else None
    known = msg_type in msgspec_v5.schema_fragments
    if (
        status == "aborted"
        or (status == "error" and msg_type not in msgspec_v5.reply_msgs_using_status)
        or not known
    ):
        # The schemas know error replies only for some reply types (the spec allows one for every
        # request), none for unknown types, and spell the deprecated status 'abort' where kernels
        # send 'aborted' (jupyter_client#1063): check the envelope and the error shape instead.
        msgspec_v5.msg_structure_validator.validate(msg)
        assert msg["header"]["version"] == PROTOCOL_VERSION
        if status == "aborted":
            assert msg["content"] == {"status": "aborted"}
        else:
            msgspec_v5.get_error_reply_validator(5).validate(msg["content"])
        return
    validate(msg, msg_type)


@pytest.fixture
def outlet() -> Iterator[RecordingOutlet]:
    recorder = RecordingOutlet()
    yield recorder
    for sent in recorder.sent:
        check_spec(sent)


def make_kernel(outlet: RecordingOutlet, **options: Any) -> Kernel:
    kernel = Kernel(
        outlet,
        MessageFactory("kernel-session"),
        connection_info={**PORTS, "transport": "tcp", "ip": "127.0.0.1", "key": "secret"},
        **options,
    )
    return kernel


def dispatch(kernel: Kernel, channel: str, msg: Message) -> None:
    """``kernel.dispatch`` with cell output going to the kernel's streams, as the app arranges."""
    with contextlib.redirect_stdout(kernel.stdout), contextlib.redirect_stderr(kernel.stderr):
        kernel.dispatch(channel, msg)


@pytest.fixture
def kernel(outlet: RecordingOutlet) -> Kernel:
    return make_kernel(outlet)


client = MessageFactory("client-session")


def request(msg_type: str, content: Any = None, **fields: Any) -> Message:
    """A request as the transport hands it to the core (what WireCodec.deserialize returns)."""
    msg = client.msg(msg_type, {**(content or {}), **fields})
    msg["idents"] = list(CLIENT_IDENT)
    msg["msg_id"] = msg["header"]["msg_id"]
    msg["problems"] = []
    return msg


def execute(kernel: Kernel, code: str, channel: str = "shell", **fields: Any) -> Message:
    msg = request("execute_request", {"code": code, **fields})
    dispatch(kernel, channel, msg)
    return msg


def assert_replied(outlet: RecordingOutlet, req: Message, channel: str) -> Sent:
    """busy, one reply on ``channel`` to ``req`` with its routing idents, idle; return the reply."""
    reply_type = req["msg_type"].replace("_request", "_reply")
    mine = outlet.for_parent(req)
    assert mine[0] == "status:busy" and mine[-1] == "status:idle", mine
    assert mine.count("status:busy") == mine.count("status:idle") == 1, mine
    (reply,) = [s for s in outlet.sent if s.msg_type == reply_type and s.parent_id == req["msg_id"]]
    assert reply.channel == channel
    assert reply.idents == CLIENT_IDENT
    assert reply.msg["parent_header"] == req["header"]
    return reply


BUSY, IDLE = "iopub:status:busy", "iopub:status:idle"


# -- simple requests -------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_kernel_info(kernel: Kernel, outlet: RecordingOutlet, channel: str) -> None:
    req = request("kernel_info_request")
    dispatch(kernel, channel, req)
    assert outlet.trace() == [BUSY, f"{channel}:kernel_info_reply", IDLE]
    assert all(s.msg["parent_header"] == req["header"] for s in outlet.sent)
    info = assert_replied(outlet, req, channel).content
    assert info["status"] == "ok"
    assert info["protocol_version"] == PROTOCOL_VERSION
    assert info["implementation"] == "fastkernel"
    assert info["language_info"]["name"] == "python"
    assert info["language_info"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert info["language_info"]["file_extension"] == ".py"


def test_replies_come_from_the_kernel_session(kernel: Kernel, outlet: RecordingOutlet) -> None:
    dispatch(kernel, "shell", request("kernel_info_request"))
    assert {s.msg["header"]["session"] for s in outlet.sent} == {"kernel-session"}
    assert len({s.msg["header"]["msg_id"] for s in outlet.sent}) == 3


@pytest.mark.parametrize(
    "code, expected",
    [
        ("x = 1", {"status": "complete"}),
        ("for i in range(3):", {"status": "incomplete", "indent": "    "}),
        ("x = (1,", {"status": "incomplete", "indent": ""}),
        ("x = )", {"status": "invalid"}),
    ],
)
@pytest.mark.parametrize("channel", ["shell", "control"])
def test_is_complete(kernel: Kernel, outlet: RecordingOutlet, channel: str, code: str, expected: Any) -> None:
    req = request("is_complete_request", code=code)
    dispatch(kernel, channel, req)
    assert outlet.trace() == [BUSY, f"{channel}:is_complete_reply", IDLE]
    assert assert_replied(outlet, req, channel).content == expected


@pytest.mark.parametrize("content", [{}, {"target_name": "jupyter.widget"}])
def test_comm_info(kernel: Kernel, outlet: RecordingOutlet, content: Any) -> None:
    req = request("comm_info_request", content)
    dispatch(kernel, "shell", req)
    assert outlet.trace() == [BUSY, "shell:comm_info_reply", IDLE]
    assert assert_replied(outlet, req, "shell").content == {"status": "ok", "comms": {}}


def test_connect_reports_the_ports(kernel: Kernel, outlet: RecordingOutlet) -> None:
    req = request("connect_request")
    dispatch(kernel, "shell", req)
    assert outlet.trace() == [BUSY, "shell:connect_reply", IDLE]
    assert assert_replied(outlet, req, "shell").content == {"status": "ok", **PORTS}


@pytest.mark.parametrize(
    "content, restart", [({"restart": True}, True), ({"restart": False}, False), ({}, False)]
)
def test_shutdown_replies_then_stops(
    kernel: Kernel, outlet: RecordingOutlet, content: Any, restart: bool
) -> None:
    req = request("shutdown_request", content)
    dispatch(kernel, "control", req)
    assert outlet.trace() == [BUSY, "control:shutdown_reply", IDLE, "stop"]
    assert assert_replied(outlet, req, "control").content == {"status": "ok", "restart": restart}


def test_interrupt_interrupts_main_and_replies(kernel: Kernel, outlet: RecordingOutlet) -> None:
    req = request("interrupt_request")
    dispatch(kernel, "control", req)
    assert outlet.trace() == [BUSY, "interrupt_main", "control:interrupt_reply", IDLE]
    assert assert_replied(outlet, req, "control").content == {"status": "ok"}


def test_interrupt_is_not_served_on_shell(kernel: Kernel, outlet: RecordingOutlet) -> None:
    req = request("interrupt_request")
    dispatch(kernel, "shell", req)
    assert outlet.trace() == [BUSY, "shell:interrupt_reply", IDLE]
    assert assert_replied(outlet, req, "shell").content["ename"] == "UnknownMessageType"


# -- execute ----------------------------------------------------------------------------------


def test_execute_sends_input_stream_result_then_reply(kernel: Kernel, outlet: RecordingOutlet) -> None:
    code = "print('hello')\n6 * 7"
    req = execute(kernel, code)
    assert outlet.trace() == [
        BUSY,
        "iopub:execute_input",
        "iopub:stream",
        "iopub:execute_result",
        "flush_iopub",
        "shell:execute_reply",
        IDLE,
    ]
    assert all(s.msg["parent_header"] == req["header"] for s in outlet.sent)
    assert outlet.of_type("execute_input")[0].content == {"code": code, "execution_count": 1}
    assert outlet.of_type("stream")[0].content == {"name": "stdout", "text": "hello\n"}
    assert outlet.of_type("execute_result")[0].content == {
        "execution_count": 1,
        "data": {"text/plain": "42"},
        "metadata": {},
    }
    reply = assert_replied(outlet, req, "shell")
    assert reply.content == {"status": "ok", "execution_count": 1, "payload": [], "user_expressions": {}}
    assert reply.msg["metadata"]["status"] == "ok"


def test_output_of_stdout_and_stderr_keeps_its_order(kernel: Kernel, outlet: RecordingOutlet) -> None:
    execute(kernel, "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')\nprint('d')")
    streams = [(s.content["name"], s.content["text"]) for s in outlet.of_type("stream")]
    assert streams == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\nd\n")]


def test_no_output_when_the_last_line_is_a_statement(kernel: Kernel, outlet: RecordingOutlet) -> None:
    execute(kernel, "x = 1")
    # No output to wait for, so no iopub barrier before the reply (it costs a thread hand-off).
    assert outlet.trace() == [BUSY, "iopub:execute_input", "shell:execute_reply", IDLE]


def test_error_sends_error_message_and_error_reply(kernel: Kernel, outlet: RecordingOutlet) -> None:
    req = execute(kernel, "print('before')\ndef f():\n    return 1 / 0\nf()")
    assert outlet.trace() == [
        BUSY,
        "iopub:execute_input",
        "iopub:stream",
        "iopub:error",
        "flush_iopub",
        "shell:execute_reply",
        IDLE,
    ]
    error = outlet.of_type("error")[0].content
    assert error["ename"] == "ZeroDivisionError"
    assert error["evalue"] == "division by zero"
    assert any("Cell In[1]" in line for line in error["traceback"])
    assert not any("fastkernel" in line for line in error["traceback"]), error["traceback"]
    reply = assert_replied(outlet, req, "shell")
    assert reply.content == {**error, "status": "error", "execution_count": 1}
    assert reply.msg["metadata"]["status"] == "error"


@pytest.mark.parametrize(
    "code, ename",
    [
        ("class MyError(Exception):\n    pass\nraise MyError('custom')", "MyError"),
        ("import json\njson.loads('{')", "JSONDecodeError"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("raise SystemExit(3)", "SystemExit"),
        ("x = (", "SyntaxError"),
    ],
)
def test_error_name_is_the_bare_class_name(
    kernel: Kernel, outlet: RecordingOutlet, code: str, ename: str
) -> None:
    execute(kernel, code)
    assert outlet.of_type("error")[0].content["ename"] == ename
    assert outlet.reply().content["ename"] == ename


def test_execution_count_counts_stored_non_silent_executions(kernel: Kernel, outlet: RecordingOutlet) -> None:
    runs: list[tuple[dict[str, Any], int]] = [
        ({}, 1),
        ({}, 2),
        ({"silent": True}, 2),
        ({"store_history": False}, 2),
        ({"silent": True, "store_history": True}, 2),  # silent wins
        ({"code": "1 / 0"}, 3),  # a failing cell still takes a number
        ({}, 4),
    ]
    for fields, expected in runs:
        outlet.clear()
        execute(kernel, **{"code": "x = 1", **fields})
        assert outlet.reply().content["execution_count"] == expected, fields
        for sent in outlet.of_type("execute_input"):
            assert sent.content["execution_count"] == expected


def test_execute_result_carries_the_execution_count(kernel: Kernel, outlet: RecordingOutlet) -> None:
    execute(kernel, "1")
    execute(kernel, "2", store_history=False)
    execute(kernel, "3")
    counts = [
        (s.content["data"]["text/plain"], s.content["execution_count"])
        for s in outlet.of_type("execute_result")
    ]
    assert counts == [("1", 1), ("2", 1), ("3", 2)]


def test_silent_sends_neither_input_nor_result(kernel: Kernel, outlet: RecordingOutlet) -> None:
    req = execute(kernel, "y = 20\ny + 1", silent=True)
    assert outlet.trace() == [BUSY, "shell:execute_reply", IDLE]
    assert assert_replied(outlet, req, "shell").content["status"] == "ok"
    outlet.clear()
    execute(kernel, "y")  # the silent cell did run
    assert outlet.of_type("execute_result")[0].content["data"] == {"text/plain": "20"}


def test_user_expressions(kernel: Kernel, outlet: RecordingOutlet) -> None:
    expressions = {"double": "x * 2", "text": "'a' + 'b'", "bad": "1 / 0", "missing": "nope", "syntax": "x +"}
    req = execute(kernel, "x = 6", user_expressions=expressions)
    assert outlet.of_type("execute_result") == []  # expressions are returned, not displayed
    results = assert_replied(outlet, req, "shell").content["user_expressions"]
    assert set(results) == set(expressions)
    assert results["double"] == {"status": "ok", "data": {"text/plain": "12"}, "metadata": {}}
    assert results["text"] == {"status": "ok", "data": {"text/plain": "'ab'"}, "metadata": {}}
    for name, ename in [("bad", "ZeroDivisionError"), ("missing", "NameError"), ("syntax", "SyntaxError")]:
        assert results[name]["status"] == "error"
        assert results[name]["ename"] == ename
        assert isinstance(results[name]["evalue"], str)
        assert all(isinstance(line, str) for line in results[name]["traceback"])


def test_user_expression_that_is_not_a_string_is_an_error_for_that_key_only(
    kernel: Kernel, outlet: RecordingOutlet
) -> None:
    req = execute(kernel, "x = 6", user_expressions={"ok": "x", "number": 5})
    results = assert_replied(outlet, req, "shell").content["user_expressions"]
    assert results["ok"]["data"] == {"text/plain": "6"}
    assert results["number"]["status"] == "error"


def test_user_expression_traceback_shows_no_kernel_internals(kernel: Kernel, outlet: RecordingOutlet) -> None:
    execute(kernel, "x = 6", user_expressions={"bad": "1 / 0"})
    traceback = outlet.reply().content["user_expressions"]["bad"]["traceback"]
    assert not any("fastkernel" in line for line in traceback), traceback


# -- stop_on_error ----------------------------------------------------------------------------


def queue_three(outlet: RecordingOutlet) -> tuple[Message, Message, Message]:
    first = request("execute_request", code="ran_first = True")
    info = request("kernel_info_request")
    second = request("execute_request", code="ran_second = True", silent=False)
    outlet.queued = [first, info, second]
    return first, info, second


def test_error_aborts_queued_execute_requests_but_answers_the_rest(
    kernel: Kernel, outlet: RecordingOutlet
) -> None:
    first, info, second = queue_three(outlet)
    failing = execute(kernel, "1 / 0")

    assert outlet.count("drain_shell") == 1
    assert assert_replied(outlet, failing, "shell").content["ename"] == "ZeroDivisionError"
    for req in (first, info, second):
        reply_type = req["msg_type"].replace("_request", "_reply")
        assert outlet.for_parent(req) == ["status:busy", reply_type, "status:idle"]
    replies = [s for s in outlet.sent if s.msg_type.endswith("_reply") and s.parent_id != failing["msg_id"]]
    assert [r.parent_id for r in replies] == [
        first["msg_id"],
        info["msg_id"],
        second["msg_id"],
    ]  # in queue order
    for req in (first, second):
        reply = assert_replied(outlet, req, "shell")
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "ExecutionAborted"
        assert reply.content["execution_count"] == 1
        assert reply.msg["metadata"]["status"] == "error"
    assert assert_replied(outlet, info, "shell").content["status"] == "ok"
    assert outlet.of_type("execute_input") == [outlet.of_type("execute_input")[0]]  # only the failing cell

    outlet.clear()  # the aborted cells never ran, and the kernel carries on
    req = execute(kernel, "'ran_first' in globals() or 'ran_second' in globals()")
    assert outlet.of_type("execute_result")[0].content["data"] == {"text/plain": "False"}
    assert assert_replied(outlet, req, "shell").content["execution_count"] == 2


def test_aborted_replies_can_use_the_legacy_status(
    outlet: RecordingOutlet,
) -> None:
    kernel = make_kernel(outlet, stop_on_error_reply="aborted")
    first, info, second = queue_three(outlet)
    execute(kernel, "1 / 0")
    for req in (first, second):
        reply = assert_replied(outlet, req, "shell")
        assert reply.content == {"status": "aborted"}
        assert reply.msg["metadata"]["status"] == "aborted"
    assert assert_replied(outlet, info, "shell").content["status"] == "ok"


def test_stop_on_error_false_leaves_the_queue_alone(kernel: Kernel, outlet: RecordingOutlet) -> None:
    queued = queue_three(outlet)
    execute(kernel, "1 / 0", stop_on_error=False)
    assert outlet.count("drain_shell") == 0
    assert outlet.queued == list(queued)
    assert outlet.reply().content["ename"] == "ZeroDivisionError"


def test_silent_failure_leaves_the_queue_alone(kernel: Kernel, outlet: RecordingOutlet) -> None:
    queued = queue_three(outlet)  # as in ipykernel: a silent (tool) cell cannot abort user cells
    execute(kernel, "1 / 0", silent=True)
    assert outlet.count("drain_shell") == 0
    assert outlet.queued == list(queued)


def test_success_leaves_the_queue_alone(kernel: Kernel, outlet: RecordingOutlet) -> None:
    queued = queue_three(outlet)
    execute(kernel, "1 / 1")
    assert outlet.count("drain_shell") == 0
    assert outlet.queued == list(queued)


def test_failing_request_is_answered_before_queued_ones_are_aborted(
    kernel: Kernel, outlet: RecordingOutlet
) -> None:
    first, _, _ = queue_three(outlet)
    failing = execute(kernel, "1 / 0")
    order = [(s.parent_id, s.msg_type, s.content.get("execution_state")) for s in outlet.sent]
    failing_idle = order.index((failing["msg_id"], "status", "idle"))
    first_busy = order.index((first["msg_id"], "status", "busy"))
    assert failing_idle < first_busy


# -- malformed requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, named",
    [
        ({"silent": False}, "'code'"),
        ({"code": 42}, "'code'"),
        ({"code": None}, "'code'"),
        ({"code": ["print(1)"]}, "'code'"),
        (["print(1)"], "content"),
        ("print(1)", "content"),
        (None, "content"),
        ({"code": "1", "silent": "yes"}, "'silent'"),
        ({"code": "1", "silent": None}, "'silent'"),
        ({"code": "1", "store_history": "no"}, "'store_history'"),
        ({"code": "1", "user_expressions": ["x"]}, "'user_expressions'"),
        ({"code": "1", "stop_on_error": "false"}, "'stop_on_error'"),
        ({"code": "1", "allow_stdin": "no"}, "'allow_stdin'"),
    ],
)
def test_malformed_execute_request_gets_bad_request_reply(
    kernel: Kernel, outlet: RecordingOutlet, content: Any, named: str
) -> None:
    req = request("execute_request")
    req["content"] = content
    dispatch(kernel, "shell", req)
    assert outlet.trace() == [BUSY, "shell:execute_reply", IDLE]
    reply = assert_replied(outlet, req, "shell").content
    assert reply["status"] == "error"
    assert reply["ename"] == "BadRequest"
    assert named in reply["evalue"]
    assert reply["execution_count"] == 0  # required in every execute_reply
    outlet.clear()  # nothing ran, and no execution number was used up
    execute(kernel, "1")
    assert outlet.reply().content["execution_count"] == 1


def test_request_whose_content_frame_did_not_parse_gets_bad_request_reply(
    kernel: Kernel, outlet: RecordingOutlet
) -> None:
    req = request("execute_request", code="1")
    req["content"] = {}
    req["problems"] = ["content is not valid JSON (Expecting value: line 1 column 1 (char 0))"]
    dispatch(kernel, "shell", req)
    assert outlet.trace() == [BUSY, "shell:execute_reply", IDLE]
    reply = assert_replied(outlet, req, "shell").content
    assert reply["ename"] == "BadRequest"
    assert "content is not valid JSON" in reply["evalue"]


@pytest.mark.parametrize(
    "msg_type, content, named",
    [
        ("is_complete_request", {}, "'code'"),
        ("is_complete_request", {"code": 1}, "'code'"),
        ("comm_info_request", {"target_name": 5}, "'target_name'"),
        ("shutdown_request", {"restart": "yes"}, "'restart'"),
    ],
)
def test_malformed_other_requests_get_bad_request_reply(
    kernel: Kernel, outlet: RecordingOutlet, msg_type: str, content: Any, named: str
) -> None:
    req = request(msg_type)
    req["content"] = content
    dispatch(kernel, "control", req)
    reply_type = msg_type.replace("_request", "_reply")
    assert outlet.trace() == [BUSY, f"control:{reply_type}", IDLE]  # a bad shutdown does not stop
    reply = assert_replied(outlet, req, "control").content
    assert (reply["status"], reply["ename"]) == ("error", "BadRequest")
    assert named in reply["evalue"]


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_unknown_request_gets_unknown_message_type_reply(
    kernel: Kernel, outlet: RecordingOutlet, channel: str
) -> None:
    req = request("frobnicate_request", {"x": 1})
    dispatch(kernel, channel, req)
    assert outlet.trace() == [BUSY, f"{channel}:frobnicate_reply", IDLE]
    reply = assert_replied(outlet, req, channel).content
    assert reply["status"] == "error"
    assert reply["ename"] == "UnknownMessageType"
    assert "frobnicate_request" in reply["evalue"]


@pytest.mark.parametrize("msg_type", ["frobnicate", "execute_reply", "status", "input_reply"])
@pytest.mark.parametrize("channel", ["shell", "control"])
def test_unknown_message_that_is_not_a_request_gets_nothing(
    kernel: Kernel, outlet: RecordingOutlet, channel: str, msg_type: str
) -> None:
    dispatch(kernel, channel, request(msg_type, {"x": 1}))
    assert outlet.calls == []


def test_a_burst_of_bad_requests_is_answered_each_but_logged_once(
    kernel: Kernel, outlet: RecordingOutlet, caplog: pytest.LogCaptureFixture
) -> None:
    requests = [request("is_complete_request") for _ in range(200)]  # no 'code': BadRequest
    with caplog.at_level("WARNING", logger="fastkernel"):
        for req in requests:
            req["content"] = {}
            dispatch(kernel, "shell", req)
    replies = [s for s in outlet.sent if s.msg_type == "is_complete_reply"]
    assert [r.parent_id for r in replies] == [r["header"]["msg_id"] for r in requests]
    assert all(r.content["ename"] == "BadRequest" for r in replies)
    lines = [r.getMessage() for r in caplog.records if "bad request" in r.getMessage()]
    assert lines == ["bad request: is_complete_request content is missing 'code'"], lines
