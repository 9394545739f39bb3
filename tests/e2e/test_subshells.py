"""Subshells (JEP 91) through a real kernel: concurrency, routing, errors, stdin, deletion, shutdown.

Concurrency is shown by order, never by time: cells wait on threading.Events that only
another shell's cell sets, so a reply can only come once the other shell has run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Execution, KernelHarness, stream_text
from tests.spec import validate

TIMEOUT = 20


class Shells:
    """A harness that can address subshells: control requests and shell requests with an id."""

    def __init__(self, harness: KernelHarness) -> None:
        self.h = harness

    def control(self, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
        msg = self.h.kc.session.msg(msg_type, content or {})
        self.h.kc.control_channel.send(msg)
        reply = self.h.get_reply(msg["header"]["msg_id"], "control")
        validate(reply, msg_type.replace("_request", "_reply"), msg["header"]["msg_id"])
        return reply["content"]  # type: ignore[no-any-return]

    def create(self) -> str:
        content = self.control("create_subshell_request")
        assert content["status"] == "ok", content
        return str(content["subshell_id"])

    def send(self, code: str, subshell_id: str | None = None, **fields: Any) -> str:
        """An execute_request on ``subshell_id`` (None: the main shell), not waited for."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
        content.update({"allow_stdin": False, "stop_on_error": True, **fields})
        msg = self.h.kc.session.msg("execute_request", content)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.h.kc.shell_channel.send(msg)
        self.sent.add(msg["header"]["msg_id"])
        return str(msg["header"]["msg_id"])

    def next_reply(self) -> dict[str, Any]:
        reply = self.h.kc.get_shell_msg(timeout=TIMEOUT)
        validate(reply)
        return reply

    def finish(self, msg_id: str) -> Execution:
        """The reply to ``msg_id`` (read in arrival order from ``replies``) and its iopub messages."""
        return Execution(self.replies.pop(msg_id), self.h.collect_iopub(msg_id))

    def collect_replies(self, count: int) -> list[str]:
        """Read ``count`` replies to requests sent with :meth:`send`; return the msg_ids they
        answer, in arrival order (other replies, such as the harness's start-up kernel_info
        ones, are validated and left out)."""
        order: list[str] = []
        while len(order) < count:
            reply = self.next_reply()
            parent = reply["parent_header"]["msg_id"]
            if parent in self.sent:
                self.replies[parent] = reply
                order.append(parent)
        return order

    replies: dict[str, dict[str, Any]] = {}
    sent: set[str] = set()


def started(shells: Shells, msg_id: str) -> None:
    """Wait until the cell of ``msg_id`` has started (its execute_input went out)."""
    shells.h.wait_for_iopub(
        lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "execute_input"
    )


@pytest.fixture
def shells(fresh_kernel: KernelHarness) -> Iterator[Shells]:
    s = Shells(fresh_kernel)
    s.replies, s.sent = {}, set()
    yield s


def test_kernel_info_offers_subshells(kernel: KernelHarness) -> None:
    reply = kernel.request("kernel_info_request", {})
    assert "kernel subshells" in reply.content["supported_features"]


def test_create_list_delete(shells: Shells) -> None:
    assert shells.control("list_subshell_request") == {"status": "ok", "subshell_id": []}
    first, second = shells.create(), shells.create()
    assert first != second
    assert sorted(shells.control("list_subshell_request")["subshell_id"]) == sorted([first, second])
    assert shells.control("delete_subshell_request", {"subshell_id": first}) == {"status": "ok"}
    assert shells.control("list_subshell_request")["subshell_id"] == [second]
    gone = shells.control("delete_subshell_request", {"subshell_id": first})
    assert gone["status"] == "error" and gone["ename"] == "SubshellNotFound"


def test_two_subshells_and_the_main_shell_run_at_once(shells: Shells) -> None:
    shells.h.execute("import threading; first, second = threading.Event(), threading.Event()")
    a, b = shells.create(), shells.create()
    main_id = shells.send("print('main', first.wait(10))")  # busy until the test releases it
    a_id = shells.send("print('a', second.wait(10))", a)  # busy until b's cell runs
    b_id = shells.send("second.set(); print('b')", b)
    assert set(shells.collect_replies(2)) == {a_id, b_id}  # both answered while main still runs
    release_id = shells.send("first.set()", b)
    assert set(shells.collect_replies(2)) == {release_id, main_id}
    for msg_id, text in ((main_id, "main True\n"), (a_id, "a True\n"), (b_id, "b\n")):
        ex = shells.finish(msg_id)
        assert ex.content["status"] == "ok"
        assert ex.stream_text() == text  # each cell's output is parented to its own request
    # One execution counter for every shell: the set-up cell, four cells, and this one.
    assert shells.h.execute("1").content["execution_count"] == 6
    # A subshell cell's result is kept under its own number, beside the main shell's.
    result_id = shells.send("'from the subshell'", b)
    assert shells.collect_replies(1) == [result_id]
    count = shells.finish(result_id).content["execution_count"]
    assert shells.h.execute(f"print(Out[{count}], In[{count}])").stream_text() == (
        "from the subshell 'from the subshell'\n"
    )


def test_an_unknown_subshell_gets_an_error_reply(shells: Shells) -> None:
    msg_id = shells.send("print('never')", "no-such-subshell")
    ex = shells.finish(shells.collect_replies(1)[0])
    assert ex.reply["parent_header"]["msg_id"] == msg_id
    assert (ex.content["status"], ex.content["ename"]) == ("error", "UnknownSubshell")
    assert ex.stream_text() == ""


def test_stop_on_error_aborts_only_the_failing_subshells_queue(shells: Shells) -> None:
    shells.h.execute("import threading; gate = threading.Event()")
    failing, other = shells.create(), shells.create()
    fail_id = shells.send("gate.wait(10); 1 / 0", failing)
    queued_id = shells.send("print('not run')", failing)
    other_id = shells.send("gate.set(); print('other ran')", other)
    order = shells.collect_replies(3)
    assert set(order) == {fail_id, queued_id, other_id} and order.index(fail_id) < order.index(queued_id)
    assert shells.finish(fail_id).content["ename"] == "ZeroDivisionError"
    queued = shells.finish(queued_id)
    assert queued.content["ename"] == "ExecutionAborted" and queued.stream_text() == ""
    assert shells.finish(other_id).stream_text() == "other ran\n"
    after = shells.send("print('still serving')", failing)
    assert shells.collect_replies(1) == [after]
    assert shells.finish(after).stream_text() == "still serving\n"
    assert shells.h.execute("print('main fine')").stream_text() == "main fine\n"


def test_input_from_a_subshell_answers_that_subshell(shells: Shells) -> None:
    sub = shells.create()
    msg_id = shells.send("print('got', input('name? '))", sub, allow_stdin=True)
    request = shells.h.kc.get_stdin_msg(timeout=TIMEOUT)
    validate(request, "input_request")
    assert request["parent_header"]["msg_id"] == msg_id
    assert request["content"]["prompt"] == "name? "
    shells.h.kc.input("sub")
    assert shells.collect_replies(1) == [msg_id]
    assert shells.finish(msg_id).stream_text() == "got sub\n"


def test_deleting_a_busy_subshell_answers_its_queue_and_ends_its_thread(shells: Shells) -> None:
    shells.h.execute("import threading; gate = threading.Event(); before = threading.active_count()")
    sub = shells.create()
    running = shells.send("gate.wait(10); print('finished')", sub)
    queued = shells.send("print('not run')", sub)
    started(shells, running)  # a request that has not started when its subshell is deleted is refused
    probe = shells.send("1")  # routed after `queued`: once it is answered, `queued` waits in its queue
    assert shells.collect_replies(1) == [probe]
    assert shells.control("delete_subshell_request", {"subshell_id": sub}) == {"status": "ok"}
    release = shells.send("gate.set()")  # on the main shell; replies may now come in any order
    assert set(shells.collect_replies(3)) == {running, queued, release}
    assert shells.finish(queued).content["ename"] == "SubshellDeleted"
    ran = shells.finish(running)
    assert ran.stream_text() == "finished\n"
    shells.finish(release)
    ending = (
        "[t.join(5) for t in threading.enumerate() if t.name.startswith(('fastkernel-su', 'fastkernel-sh'))]"
    )
    shells.h.execute(ending)  # the subshell's thread, then the router, end once it has answered
    assert shells.h.execute("print(threading.active_count() - before)").stream_text() == "0\n"


def test_shutdown_with_live_subshells_answers_every_request(shells: Shells) -> None:
    sub = shells.create()
    shells.create()
    running = shells.send("import itertools\nfor i in itertools.count(): pass", sub)
    queued = shells.send("print('not run')", sub)
    started(shells, running)
    probe = shells.send("1")  # routed after `queued`: once it is answered, `queued` waits in its queue
    assert shells.collect_replies(1) == [probe]
    assert shells.control("shutdown_request", {"restart": False})["status"] == "ok"
    order = shells.collect_replies(2)
    assert sorted(order) == sorted([running, queued])
    assert shells.replies[running]["content"]["ename"] == "KeyboardInterrupt"
    # The interrupted cell failed, so stop_on_error answers what was queued behind it.
    assert shells.replies[queued]["content"]["ename"] == "ExecutionAborted"
    assert shells.h.wait_for_exit() == 0


def test_usage_request(kernel: KernelHarness) -> None:
    msg = kernel.kc.session.msg("usage_request", {})
    kernel.kc.control_channel.send(msg)
    reply = kernel.get_reply(msg["header"]["msg_id"], "control")
    content = reply["content"]
    assert content["pid"] > 0 and content["cpu_count"] >= 1 and content["hostname"]
    assert content["kernel_memory"] > 10 * 2**20  # bytes: a Python process is at least this big
    assert content["kernel_cpu"] >= 0
    memory = content["host_virtual_memory"]
    assert memory["total"] >= memory["available"] > 0 and 0 <= memory["percent"] <= 100


def test_subshell_magic_names_the_subshell(shells: Shells) -> None:
    sub = shells.create()
    main = shells.h.execute("%subshell").stream_text()
    assert "subshell id: None\n" in main and f"subshell list: ['{sub}']\n" in main
    msg_id = shells.send("%subshell", sub)
    assert shells.collect_replies(1) == [msg_id]
    text = shells.finish(msg_id).stream_text()
    assert f"subshell id: {sub}\n" in text and "thread id: " in text


def test_a_widget_answers_on_a_subshell_while_the_main_shell_is_busy(shells: Shells) -> None:
    pytest.importorskip("ipywidgets")
    setup = (
        "import threading, ipywidgets as w\ngate = threading.Event()\ns = w.IntSlider(value=1)\n"
        "s.observe(lambda change: print('changed to', change['new']), 'value')\ns"
    )
    view = shells.h.execute(setup).of_type("execute_result")[0]["content"]["data"]
    comm_id = view["application/vnd.jupyter.widget-view+json"]["model_id"]
    sub = shells.create()  # JupyterLab's comms over subshells: one per comm target
    busy = shells.send("print('busy', gate.wait(15))")
    started(shells, busy)
    update = shells.h.kc.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []}},
    )
    update["header"]["subshell_id"] = sub
    shells.h.kc.shell_channel.send(update)
    printed = shells.h.wait_for_iopub(
        lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == update["header"]["msg_id"]
    )
    assert printed["content"]["text"] == "changed to 7\n"  # while the main shell's cell still runs
    release = shells.send("gate.set()", sub)
    assert set(shells.collect_replies(2)) == {busy, release}
    assert shells.finish(busy).stream_text() == "busy True\n"
    assert shells.h.execute("print(s.value)").stream_text() == "7\n"


def test_main_shell_replies_survive_subshells_coming_and_going(shells: Shells) -> None:
    """Main-shell replies sent while the first subshell's router takes the socket over, or hands
    it back, all go out (a reply sent in between once met ``routed`` set and no router yet:
    AssertionError in the kernel, the reply lost, the frontend's cell waiting for ever)."""
    for _ in range(40):
        sent = [shells.send("sum(range(20000))") for _ in range(4)]
        subshell = shells.create()
        assert shells.control("delete_subshell_request", {"subshell_id": subshell}) == {"status": "ok"}
        assert sorted(shells.collect_replies(len(sent))) == sorted(sent)
        for msg_id in sent:
            assert shells.replies.pop(msg_id)["content"]["status"] == "ok"


def _comm_msg_on(shells: Shells, subshell_id: str, comm_id: str, data: dict[str, Any]) -> str:
    msg = shells.h.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    msg["header"]["subshell_id"] = subshell_id
    shells.h.kc.shell_channel.send(msg)
    return str(msg["header"]["msg_id"])


SLOW_RENDER = """\
import threading, ipywidgets as w
handled, rendering = threading.Event(), []

class Slow:
    def _repr_html_(self):
        rendering.append(True)
        print('render started', flush=True)
        handled.wait(1)  # the window in which a handler racing this render would run
        rendering.pop()
        return '<b>slow</b>'

s = w.IntSlider(value=1)

def on_value(change):
    print('during render' if rendering else 'after render', change['new'])
    handled.set()

s.observe(on_value, 'value')
"""


def test_a_widget_handler_on_a_subshell_waits_for_the_main_shell_to_finish_rendering(
    shells: Shells,
) -> None:
    """A library's repr may leave an object half-built while it renders (matplotlib unsets a
    canvas's manager while it saves a PNG): a comm handler never runs in the middle of it."""
    pytest.importorskip("ipywidgets")
    shells.h.execute(SLOW_RENDER + "s")
    comm_id = shells.h.execute("print(s.model_id)").stream_text().strip()
    sub = shells.create()
    render = shells.send("Slow()")
    shells.h.wait_for_iopub(
        lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == render
    )
    update = _comm_msg_on(
        shells, sub, comm_id, {"method": "update", "state": {"value": 3}, "buffer_paths": []}
    )
    assert shells.collect_replies(1) == [render]
    shown = shells.finish(render)
    assert shown.of_type("execute_result")[0]["content"]["data"]["text/html"] == "<b>slow</b>"
    handler_output = shells.h.collect_iopub(update)
    assert stream_text(handler_output) == "after render 3\n"


def test_ipympl_figure_pixels_arrive_when_its_view_talks_over_a_subshell(shells: Shells) -> None:
    """What JupyterLab does with comms over subshells: the figure's view, rendered from the
    cell's result, asks for the image on a subshell while the main shell ends the cell."""
    pytest.importorskip("ipympl")
    sub = shells.create()
    cell = shells.send(
        "%matplotlib widget\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([1, 2, 3], [1, 4, 9])\nfig.canvas"
    )
    result = shells.h.wait_for_iopub(
        lambda m: m["msg_type"] == "execute_result" and m["parent_header"].get("msg_id") == cell
    )
    canvas = result["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    asks = [
        _comm_msg_on(shells, sub, canvas, {"method": "custom", "content": {"type": kind}})
        for kind in ("refresh", "send_image_mode", "initialized", "draw")
    ]
    image = shells.h.wait_for_iopub(
        lambda m: (
            m["msg_type"] == "comm_msg" and m["parent_header"].get("msg_id") in asks and bool(m["buffers"])
        )
    )
    assert bytes(image["buffers"][0]).startswith(b"\x89PNG")
    for ask in asks:
        assert not [m for m in shells.h.collect_iopub(ask) if m["msg_type"] == "error"]
    assert shells.collect_replies(1) == [cell]
