"""The kernel core: routes each request to a handler, with busy/idle around it.

It owns no sockets and starts no threads. The transport calls :meth:`Kernel.dispatch` on
the thread that owns the request's socket, and the core answers through the injected
:class:`Outlet`. Every request whose header parses gets ``status: busy``, exactly one
reply and ``status: idle``, whatever its content holds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastkernel import ipycompat
from fastkernel.history import HistoryStore
from fastkernel.interpreter.completeness import is_complete
from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.formatting import format_object
from fastkernel.interpreter.importhooks import after_import
from fastkernel.interpreter.inputs import StdinNotImplementedError
from fastkernel.interpreter.outcache import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES
from fastkernel.interpreter.streams import CURRENT_CELL, OUTPUT_TARGET, KernelStream
from fastkernel.lifecycle import labelled_call
from fastkernel.messages import MessageFactory, error_content, kernel_info_content
from fastkernel.outputs import StreamCoalescer
from fastkernel.wire import Message, utcnow_iso

log = logging.getLogger("fastkernel")

Content = dict[str, Any]
COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})


class Outlet(Protocol):
    """What the core needs from the transport."""

    def send(self, channel: str, msg: Message, idents: list[bytes] | None = None) -> None: ...

    def flush_iopub(self) -> None:
        """Return once every iopub message queued so far has been handed to zmq."""

    def schedule_stream_flush(self, delay: float) -> None: ...

    def drain_shell(self) -> list[Message]:
        """Shell requests already waiting, taken off the socket without blocking."""
        ...

    def interrupt_main(self) -> None: ...

    def drain_stdin(self) -> None:
        """Drop unread stdin messages (answers to earlier, abandoned prompts)."""

    def wait_input_reply(self, request_id: str) -> Message:
        """Block (interruptibly) until the stdin reply to ``request_id`` arrives."""
        ...

    def stop(self) -> None:
        """Leave the serving loops; called after a shutdown reply has been sent."""


class BadRequest(Exception):
    """The request's content is not what its message type requires."""


@dataclass
class Reply:
    content: Content
    metadata: dict[str, Any] | None = None
    # Runs after the reply and the idle status are sent (abort the queue, stop serving).
    then: Callable[[], None] | None = None


def field(msg: Message, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``msg.content[name]`` checked against ``kind``; raise BadRequest naming the problem."""
    content = msg["content"]
    if not isinstance(content, dict):
        raise BadRequest(f"{msg['msg_type']} content must be a JSON object, got {type(content).__name__}")
    if name not in content:
        if default is ...:
            raise BadRequest(f"{msg['msg_type']} content is missing {name!r}")
        return default
    value = content[name]
    if kind is bool and value in (0, 1):
        value = bool(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = getattr(kind, "__name__", str(kind))
        raise BadRequest(f"{msg['msg_type']} field {name!r} must be {expected}, got {type(value).__name__}")
    return value


def _count(msg: Message, n: Any) -> int:
    """A history_request ``n``: a count of cells, not negative."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise BadRequest(f"{msg['msg_type']} field 'n' must be a non-negative integer, got {n!r}")
    return n


class WarningLimiter:
    """Logs at most one warning per ``interval`` seconds; the next line counts those left out.

    A client holding the key can send malformed requests as fast as it likes: each still gets
    its error reply, but the log must not grow with them.
    """

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last = -float("inf")
        self._skipped = 0

    def warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._skipped += 1
            return
        more = f" (and {self._skipped} more since the last report)" if self._skipped else ""
        self._last, self._skipped = now, 0
        log.warning("%s%s", text, more)


class Kernel:
    """Message handlers for the shell and control channels."""

    def __init__(
        self,
        outlet: Outlet,
        factory: MessageFactory | None = None,
        *,
        connection_info: dict[str, Any] | None = None,
        stream_interval: float = 0.05,
        stop_on_error_reply: str = "error",
        output_cache_entries: int = DEFAULT_MAX_ENTRIES,
        output_cache_bytes: int = DEFAULT_MAX_BYTES,
        history: HistoryStore | None = None,
    ) -> None:
        self.outlet = outlet
        self.factory = factory or MessageFactory()
        self.connection_info = connection_info or {}
        self.execution_count = 0
        self.stop_on_error_reply = stop_on_error_reply
        self.interpreter = Interpreter(on_result=self._publish_result, publish_display=self._publish_display)
        self.interpreter.history.set_limits(output_cache_entries, output_cache_bytes)
        self.history_store = history if history is not None else HistoryStore()  # history_request
        self.streams = StreamCoalescer(self._publish_stream, outlet.schedule_stream_flush, stream_interval)
        self.stdout = KernelStream("stdout", self.streams.write)
        self.stderr = KernelStream("stderr", self.streams.write)
        self._parent: Message | None = None
        self._allow_stdin = False
        self._unknown_logged: set[str] = set()
        self._bad_requests = WarningLimiter()
        self._completer: Any = None  # interpreter.completion.Completer, made by the first complete_request
        self.published = 0  # iopub messages so far: tells whether a cell produced output
        self.shell_handlers: dict[str, Callable[[Message], Reply]] = {
            "execute_request": self.execute_request,
            "kernel_info_request": self.kernel_info_request,
            "is_complete_request": self.is_complete_request,
            "complete_request": self.complete_request,
            "inspect_request": self.inspect_request,
            "comm_info_request": self.comm_info_request,
            "connect_request": self.connect_request,
            "shutdown_request": self.shutdown_request,
            "history_request": self.history_request,
        }
        self.control_handlers: dict[str, Callable[[Message], Reply]] = {
            "kernel_info_request": self.kernel_info_request,
            "shutdown_request": self.shutdown_request,
            "interrupt_request": self.interrupt_request,
            "is_complete_request": self.is_complete_request,
            "connect_request": self.connect_request,
            "comm_info_request": self.comm_info_request,
        }
        # comm is patched when first imported (by user code or the first comm message), not at start.
        after_import("comm", self._install_comms)
        ipycompat.install(self)  # get_ipython().kernel; IPython adapted when a cell imports it

    # -- publishing -------------------------------------------------------

    def publish(
        self,
        msg_type: str,
        content: Content,
        parent: Message | None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        self.published += 1
        self.outlet.send("iopub", self.factory.msg(msg_type, content, parent, metadata, buffers))

    def publish_status(self, state: str, parent: Message | None) -> None:
        self.publish("status", {"execution_state": state}, parent)

    def _publish_stream(self, name: str, text: str, parent: Message | None) -> None:
        self.publish("stream", {"name": name, "text": text}, parent)

    def current_request(self) -> Message | None:
        """The request that output of the calling context goes to (see fastkernel.outputs).

        The output target's request; for ``CURRENT_CELL``, the cell that output is attributed
        to; where the target names no request (``DISCARD``, a callable), the request being
        handled. Comm messages and ``get_ipython().kernel.get_parent()`` are parented by it.
        """
        target = OUTPUT_TARGET.get()
        if isinstance(target, dict):
            return target
        if target is CURRENT_CELL and self.streams.parent is not None:
            return self.streams.parent  # type: ignore[no-any-return]
        return self._parent

    def _publish_display(self, msg_type: str, content: Content, target: Any) -> None:
        """display_data, update_display_data and clear_output from ``display()`` and friends."""
        self.streams.sync()  # prints before the display show before it
        if target is CURRENT_CELL:
            target = self.streams.parent
        elif not isinstance(target, dict):
            # A capturing target (%%capture) may take the display; DISCARD and text-only callables drop it.
            take = getattr(target, "take_display", None)
            if take is None or take(msg_type, content):
                return
            target = self.streams.parent
        self.streams.wait_for_room()  # slow subscribers: hold the cell rather than queue without bound
        self.publish(msg_type, content, target)

    def _publish_result(self, value: Any) -> None:
        self.streams.sync()  # keep prints of the cell (fd output too) before its result
        data, metadata = format_object(value)
        self.interpreter.history.record_output(value)  # _, Out[n], _n when the cell stores history
        self.history_store.record_output(self.interpreter.history.current, data)
        content = {"execution_count": self.execution_count, "data": data, "metadata": metadata}
        self.streams.wait_for_room()
        self.publish("execute_result", content, self._parent)

    # -- dispatch -----------------------------------------------------------

    def dispatch(self, channel: str, msg: Message) -> None:
        """Handle one request from ``channel`` ("shell" or "control")."""
        table = self.shell_handlers if channel == "shell" else self.control_handlers
        msg_type = msg["msg_type"]
        handler = table.get(msg_type)
        if channel == "shell" and msg_type in COMM_MESSAGES:  # no reply, but busy and idle
            self.publish_status("busy", msg)
            try:
                self.comm_message(msg)
            finally:
                self.publish_status("idle", msg)
            return
        if handler is None and not msg_type.endswith("_request"):
            self._log_unknown(channel, msg_type)
            return
        self.publish_status("busy", msg)
        try:
            reply = self._call(handler, msg, channel)
            self.send_reply(channel, msg, reply)
        finally:
            self.publish_status("idle", msg)
        if reply.then is not None:
            reply.then()

    def _call(self, handler: Callable[[Message], Reply] | None, msg: Message, channel: str) -> Reply:
        if handler is None:
            self._log_unknown(channel, msg["msg_type"])
            return Reply(error_content("UnknownMessageType", f"{msg['msg_type']} is not served on {channel}"))
        try:
            if msg.get("problems"):
                raise BadRequest(f"{msg['msg_type']}: " + "; ".join(msg["problems"]))
            if msg["msg_type"] == "execute_request":  # a crash dump names the request (lifecycle.py)
                return labelled_call(f"execute_request[msg_id={msg['header'].get('msg_id')}]", handler, msg)
            return handler(msg)
        except BadRequest as err:
            self._bad_requests.warn(f"bad request: {err}")
            content = error_content("BadRequest", str(err))
            if msg["msg_type"] == "execute_request":  # the spec requires it on every execute_reply
                content["execution_count"] = self.execution_count
            return Reply(content)
        except Exception as err:  # a kernel bug must still answer the request
            log.exception("error handling %s", msg["msg_type"])
            return Reply(error_content(type(err).__name__, f"internal error in fastkernel: {err}"))

    def send_reply(self, channel: str, request: Message, reply: Reply) -> None:
        reply_type = request["msg_type"].rsplit("_", 1)[0] + "_reply"
        msg = self.factory.msg(reply_type, reply.content, request, reply.metadata)
        self.outlet.send(channel, msg, request.get("idents"))

    def _log_unknown(self, channel: str, msg_type: str) -> None:
        if msg_type not in self._unknown_logged:
            self._unknown_logged.add(msg_type)
            log.warning("ignoring unknown message type %r on %s (logged once per type)", msg_type, channel)

    # -- handlers -----------------------------------------------------------

    def kernel_info_request(self, msg: Message) -> Reply:
        return Reply(kernel_info_content(supported_features=[]))

    def connect_request(self, msg: Message) -> Reply:
        ports = {k: v for k, v in self.connection_info.items() if k.endswith("_port")}
        return Reply({"status": "ok", **ports})

    def comm_info_request(self, msg: Message) -> Reply:
        target_name = field(msg, "target_name", str, None)
        if "comm" not in sys.modules:
            return Reply({"status": "ok", "comms": {}})
        from fastkernel import comms

        return Reply({"status": "ok", "comms": comms.info(target_name)})

    def _install_comms(self, module: Any) -> None:
        from fastkernel import comms

        comms.install(self, module)

    def comm_message(self, msg: Message) -> None:
        """comm_open, comm_msg or comm_close from a frontend; output goes to ``msg``."""
        import comm  # noqa: F401  # the first import installs fastkernel.comms (see __init__)

        from fastkernel import comms

        parent, self._parent = self._parent, msg
        try:
            comms.handle(self, msg)
        except Exception:  # a kernel bug must not stop the kernel
            log.exception("error handling %s", msg["msg_type"])
        finally:
            self._parent = parent
            self.streams.flush()

    def is_complete_request(self, msg: Message) -> Reply:
        status, indent = is_complete(field(msg, "code", str))
        content: Content = {"status": status}
        if status == "incomplete":
            content["indent"] = indent
        return Reply(content)

    def complete_request(self, msg: Message) -> Reply:
        code = field(msg, "code", str)
        cursor_pos = field(msg, "cursor_pos", int, len(code))
        if self._completer is None:
            from fastkernel.interpreter.completion import Completer

            self._completer = Completer(
                self.interpreter.namespace, magics=lambda: getattr(self.interpreter, "magics", None)
            )
        return Reply(self._completer.reply(code, cursor_pos))

    def inspect_request(self, msg: Message) -> Reply:
        from fastkernel.interpreter.introspect import inspect_reply

        code = field(msg, "code", str)
        cursor_pos = field(msg, "cursor_pos", int, len(code))
        detail_level = field(msg, "detail_level", int, 0)
        namespace, labels = self.interpreter.namespace, self.interpreter.labels
        return Reply(inspect_reply(code, cursor_pos, detail_level, namespace, labels))

    def shutdown_request(self, msg: Message) -> Reply:
        restart = field(msg, "restart", bool, False)
        if self.interpreter.executing:  # a shutdown while a cell runs interrupts it first
            self.outlet.interrupt_main()
        return Reply({"status": "ok", "restart": restart}, then=self.outlet.stop)

    def interrupt_request(self, msg: Message) -> Reply:
        self.outlet.interrupt_main()
        return Reply({"status": "ok"})

    def history_request(self, msg: Message) -> Reply:
        """tail, range and search over the SQLite history (fastkernel.history)."""
        kind = field(msg, "hist_access_type", str)
        raw = field(msg, "raw", bool, True)
        output = field(msg, "output", bool, False)
        store = self.history_store
        if kind == "tail":
            history = store.tail(_count(msg, field(msg, "n", int)), raw, output)
        elif kind == "range":
            stop = field(msg, "stop", (int, type(None)), None)
            session, start = field(msg, "session", int, 0), field(msg, "start", int, 1)
            history = store.range(session, start, stop, raw, output)
        elif kind == "search":
            pattern, unique = field(msg, "pattern", str), field(msg, "unique", bool, False)
            n = field(msg, "n", (int, type(None)), None)
            history = store.search(pattern, raw, output, None if n is None else _count(msg, n), unique)
        else:
            raise BadRequest(f"hist_access_type must be 'tail', 'range' or 'search', got {kind!r}")
        return Reply({"status": "ok", "history": history})

    def _record_history(self, count: int, code: str) -> None:
        """Cell ``count`` into the history store; written to disk later, when the kernel is idle."""
        inputs = self.interpreter.history.inputs
        source = inputs[count] if count < len(inputs) and isinstance(inputs[count], str) else code
        self.history_store.record(count, code, source)

    def execute_request(self, msg: Message) -> Reply:
        code = field(msg, "code", str)
        silent = field(msg, "silent", bool, False)
        store_history = field(msg, "store_history", bool, not silent) and not silent
        expressions = field(msg, "user_expressions", dict, {})
        stop_on_error = field(msg, "stop_on_error", bool, True)
        allow_stdin = field(msg, "allow_stdin", bool, True)
        if store_history:
            self.execution_count += 1
        count = self.execution_count
        if not silent:
            self.publish("execute_input", {"code": code, "execution_count": count}, msg)
        self.history_store.flush_if_due()  # cells queued before this one (see HistoryStore)
        started = utcnow_iso()
        published_before = self.published
        self._parent = msg
        self._allow_stdin = allow_stdin
        with self.streams.cell(msg):  # output goes to msg, also from threads and tasks the cell starts
            outcome = self.interpreter.run_cell(
                code, f"Cell In[{count}]", display=not silent, count=count, store_history=store_history
            )
        if outcome.error is not None:
            self.streams.flush()
            error = outcome.error
            self.publish(
                "error", {"ename": error.ename, "evalue": error.evalue, "traceback": error.traceback}, msg
            )
            content = {**error_content(error.ename, error.evalue, error.traceback), "execution_count": count}
        else:
            content = {
                "status": "ok",
                "execution_count": count,
                "payload": outcome.payload,
                "user_expressions": self.interpreter.evaluate_all(expressions),
            }
        self.streams.flush()
        if self.published != published_before:
            self.outlet.flush_iopub()  # every output of the cell goes out before its reply
        metadata = {
            "started": started,
            "status": content["status"],
            "dependencies_met": True,
            "duration_s": outcome.duration_s,
            "peak_rss_growth_bytes": outcome.peak_rss_growth_bytes,
        }
        if store_history:
            self._record_history(count, code)
        # Like ipykernel, a silent cell's failure does not abort what the user queued.
        abort = content["status"] == "error" and stop_on_error and not silent
        return Reply(content, metadata, then=self.abort_queued if abort else None)

    def raw_input(self, prompt: str, password: bool) -> str:
        """Ask the frontend that sent the running request for a line of input."""
        parent = self._parent
        if parent is None or not self._allow_stdin:
            raise StdinNotImplementedError(
                "input() is not available: the frontend that sent this request does not accept "
                "input (allow_stdin is false)"
            )
        if threading.current_thread() is not threading.main_thread():
            raise StdinNotImplementedError("input() is only available on the kernel's main thread")
        self.streams.sync()  # output before the prompt (fd output too) shows before it
        self.outlet.drain_stdin()
        request = self.factory.msg("input_request", {"prompt": prompt, "password": password}, parent)
        self.outlet.send("stdin", request, parent.get("idents"))
        reply = self.outlet.wait_input_reply(request["header"]["msg_id"])
        value = reply["content"].get("value", "") if isinstance(reply["content"], dict) else ""
        return str(value)

    def abort_queued(self) -> None:
        """Answer already-queued execute requests without running them (stop_on_error)."""
        for queued in self.outlet.drain_shell():
            if queued["msg_type"] != "execute_request":
                self.dispatch("shell", queued)
                continue
            self.publish_status("busy", queued)
            if self.stop_on_error_reply == "aborted":
                content: Content = {"status": "aborted"}
            else:
                content = error_content("ExecutionAborted", "not run: an earlier cell failed (stop_on_error)")
                content["execution_count"] = self.execution_count
            self.send_reply("shell", queued, Reply(content, {"status": content["status"]}))
            self.publish_status("idle", queued)
