"""The kernel core: routes each request to a handler, with busy/idle around it.

It owns no sockets and starts no threads. The transport calls :meth:`Kernel.dispatch` on
the thread that owns the request's socket, and the core answers through the injected
:class:`~fastkernel.interfaces.Outlet`. Every request whose header parses gets
``status: busy``, exactly one reply and ``status: idle``, whatever its content holds.

The code-running half (:class:`~fastkernel.runtime.Runtime`: interpreter, streams, history)
is built on the main thread the first time a request needs it, or when the kernel is first
idle after a reply: ``kernel_info_request`` is answered before any of it is imported.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from fastkernel import coderequests, starttrace
from fastkernel.interfaces import Outlet
from fastkernel.lifecycle import labelled_call
from fastkernel.logs import log
from fastkernel.messages import Message, MessageFactory, error_content, kernel_info_content
from fastkernel.ratelog import RateLimitedLog
from fastkernel.requests import BadRequest, Reply, field
from fastkernel.settings import DEFAULTS

if TYPE_CHECKING:
    from fastkernel.debugger import Debugger
    from fastkernel.history import HistoryStore
    from fastkernel.interpreter.core import Interpreter
    from fastkernel.interpreter.streams import KernelStream
    from fastkernel.outputs import StreamCoalescer
    from fastkernel.runtime import Runtime

Content = dict[str, Any]
Handler = Callable[[Message], Reply]
COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})
# Requests answered without the runtime (the rest build it first, on the main thread).
LIGHT_REQUESTS = frozenset(
    {
        "kernel_info_request",
        "connect_request",
        "comm_info_request",
        "is_complete_request",
        "interrupt_request",
        "shutdown_request",
    }
)
# Shell requests that control serves too (ipykernel does): on the control worker thread.
CONTROL_WORKER_REQUESTS = frozenset(
    {"execute_request", "complete_request", "inspect_request", "history_request"}
)


def debugpy_importable() -> bool:
    """Whether debugpy can be imported, found without importing it (nor importlib.util: this
    runs for the first kernel_info_request, before the runtime)."""
    if "debugpy" in sys.modules:
        return sys.modules["debugpy"] is not None
    from importlib.machinery import PathFinder

    return PathFinder.find_spec("debugpy") is not None


class RuntimeOptions(NamedTuple):
    """What the runtime is built with (defaults: the kernel's settings' defaults)."""

    stream_interval: float = DEFAULTS.stream_flush_interval
    max_stream_message: int = DEFAULTS.max_stream_message
    max_stream_rate: int = DEFAULTS.max_stream_rate
    output_limit: int = DEFAULTS.output_limit
    output_cache_entries: int = DEFAULTS.output_cache_entries
    output_cache_bytes: int = DEFAULTS.output_cache_bytes
    history: Callable[[], HistoryStore] | None = None  # the input history (None: in memory)
    traceback_mode: str = DEFAULTS.traceback_mode
    traceback_colors: str = DEFAULTS.traceback_colors
    traceback_hide_libraries: bool = DEFAULTS.traceback_hide_libraries


class Kernel:
    """Message handlers for the shell and control channels."""

    def __init__(
        self,
        outlet: Outlet,
        factory: MessageFactory | None = None,
        *,
        connection_info: dict[str, Any] | None = None,
        stop_on_error_reply: str = "error",
        runtime: RuntimeOptions | None = None,
        on_runtime: Callable[[Runtime], None] | None = None,
    ) -> None:
        self.outlet = outlet
        self.factory = factory or MessageFactory()
        self.connection_info = connection_info or {}
        self.stop_on_error_reply = stop_on_error_reply
        self.execution_count = 0
        self._count_lock = threading.Lock()  # subshells run cells concurrently
        # Per thread (main shell, each subshell): the request being handled, and whether its
        # frontend accepts input.
        self._local = threading.local()
        self.published = 0  # iopub messages so far: tells whether a cell produced output
        self._runtime_options = runtime
        self._on_runtime = on_runtime  # app.py: process-wide installs and fd capture
        self._runtime: Runtime | None = None
        self._runtime_lock = threading.Lock()
        self._answered = 0
        self._unknown_logged: set[str] = set()
        self._bad_requests = RateLimitedLog(log)
        self.shell_handlers: dict[str, Handler] = {
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
        self.control_handlers: dict[str, Handler] = {
            "kernel_info_request": self.kernel_info_request,
            "shutdown_request": self.shutdown_request,
            "interrupt_request": self.interrupt_request,
            "is_complete_request": self.is_complete_request,
            "connect_request": self.connect_request,
            "comm_info_request": self.comm_info_request,
            "create_subshell_request": self.create_subshell_request,
            "delete_subshell_request": self.delete_subshell_request,
            "list_subshell_request": self.list_subshell_request,
            "usage_request": self.usage_request,
            "debug_request": self.debug_request,
            # As ipykernel serves them on control too; they run on the control worker thread
            # (transport/control.py), so control keeps answering interrupts meanwhile.
            **{msg_type: self.shell_handlers[msg_type] for msg_type in CONTROL_WORKER_REQUESTS},
        }
        self._debugger: Debugger | None = None  # made by the first debug_request (control thread)
        self._debugpy_found: bool | None = None
        self._debug_parent: Message | None = None

    @property
    def parent(self) -> Message | None:
        """The request the calling thread is handling (None on threads that serve none)."""
        parent: Message | None = getattr(self._local, "parent", None)
        return parent

    @parent.setter
    def parent(self, msg: Message | None) -> None:
        self._local.parent = msg

    @property
    def allow_stdin(self) -> bool:
        return bool(getattr(self._local, "allow_stdin", False))

    @allow_stdin.setter
    def allow_stdin(self, allowed: bool) -> None:
        self._local.allow_stdin = allowed

    def next_count(self) -> int:
        """Count a cell that stores history: the shared execution counter, one step on."""
        with self._count_lock:
            self.execution_count += 1
            return self.execution_count

    # -- the runtime (see the module docstring) -------------------------------------

    @property
    def runtime(self) -> Runtime:
        """The code-running half, built on first use."""
        runtime = self._runtime
        if runtime is None:
            with self._runtime_lock:
                if self._runtime is None:
                    from fastkernel.runtime import Runtime

                    built = Runtime(self, self._runtime_options or RuntimeOptions())
                    self._runtime = built
                    built.install_hooks()
                    if self._on_runtime is not None:
                        self._on_runtime(built)
                    starttrace.mark("runtime")
                    starttrace.write()
                runtime = self._runtime
        return runtime

    @property
    def interpreter(self) -> Interpreter:
        return self.runtime.interpreter

    @property
    def streams(self) -> StreamCoalescer:
        return self.runtime.streams

    @property
    def stdout(self) -> KernelStream:
        return self.runtime.stdout

    @property
    def stderr(self) -> KernelStream:
        return self.runtime.stderr

    @property
    def history_store(self) -> HistoryStore:
        return self.runtime.history_store

    def on_idle(self) -> float | None:
        """Main thread, nothing waiting: build the runtime after the first reply, else write history."""
        if self._runtime is None:
            if not self._answered:
                return None  # nothing asked yet: the first reply comes before the runtime
            self.runtime  # noqa: B018  # built here, between requests, not in the first one
            return 0.0
        return self._runtime.history_store.on_idle()

    def executing(self, thread_id: int | None = None) -> bool:
        if self._runtime is None:
            return False
        if thread_id is None:
            return self._runtime.interpreter.executing
        return thread_id in self._runtime.interpreter.executing_threads

    def event_loop(self) -> Any:
        return None if self._runtime is None else self._runtime.interpreter.event_loop

    def close(self) -> None:
        """Publish pending output, stop output capture and write the history (at shutdown)."""
        if self._debugger is not None:
            self._debugger.close()
        if self._runtime is not None:
            self._runtime.close()

    # -- publishing -------------------------------------------------------------------

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

    def publish_stream(self, name: str, text: str, parent: Message | None) -> None:
        self.publish("stream", {"name": name, "text": text}, parent)

    def current_request(self) -> Message | None:
        """The request that output of the calling context goes to (Runtime.current_request)."""
        return self.runtime.current_request() if self._runtime is not None else self.parent

    # -- dispatch ---------------------------------------------------------------------

    def dispatch(self, channel: str, msg: Message) -> None:
        """Handle one request from ``channel`` ("shell" or "control")."""
        msg_type = msg["msg_type"]
        starttrace.mark("first_request")
        self._local.channel = channel  # where abort_queued answers (control worker: control)
        if channel == "shell" and msg_type not in LIGHT_REQUESTS:
            self.runtime  # noqa: B018  # built before the first request that runs or reads code
        if channel == "shell" and msg_type in COMM_MESSAGES:  # no reply, but busy and idle
            self.publish_status("busy", msg)
            try:
                self.comm_message(msg)
            finally:
                self.publish_status("idle", msg)
            return
        handler = (self.shell_handlers if channel == "shell" else self.control_handlers).get(msg_type)
        if handler is None and not msg_type.endswith("_request"):
            self._log_unknown(channel, msg_type)
            return
        self.publish_status("busy", msg)
        try:
            reply = self._call(handler, msg, channel)
            self.send_reply(channel, msg, reply)
            starttrace.mark("first_reply")
        finally:
            self.publish_status("idle", msg)
            self._answered += 1
        if reply.then is not None:
            reply.then()

    def _call(self, handler: Handler | None, msg: Message, channel: str) -> Reply:
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

    # -- handlers -----------------------------------------------------------------------

    def kernel_info_request(self, msg: Message) -> Reply:
        if self._debugpy_found is None:  # looked for once, not imported (see debugger.py)
            self._debugpy_found = debugpy_importable()
        features = ["kernel subshells", "debugger"] if self._debugpy_found else ["kernel subshells"]
        return Reply(kernel_info_content(supported_features=features, debugger=self._debugpy_found))

    def debug_request(self, msg: Message) -> Reply:
        """A DAP request for the visual debugger (fastkernel/debugger.py); the reply is DAP's response."""
        if self._debugger is None:
            from fastkernel.debugger import Debugger

            self._debugger = Debugger(
                self.outlet,
                lambda event: self.publish("debug_event", event, self._debug_parent),
                lambda: self._runtime.interpreter if self._runtime is not None else None,
            )
        content = msg["content"]
        if not isinstance(content, dict):  # answered in DAP's shape too: frontends read only that
            content = {"type": "not a request", "seq": 0, "command": ""}
        self._debug_parent = msg  # debugpy's events are published as its children
        return Reply(self._debugger.handle(content))

    def create_subshell_request(self, msg: Message) -> Reply:
        return Reply({"status": "ok", "subshell_id": self.outlet.create_subshell()})

    def delete_subshell_request(self, msg: Message) -> Reply:
        subshell_id = field(msg, "subshell_id", str)
        try:
            self.outlet.delete_subshell(subshell_id)
        except KeyError:
            return Reply(error_content("SubshellNotFound", f"there is no subshell {subshell_id!r}"))
        return Reply({"status": "ok"})

    def list_subshell_request(self, msg: Message) -> Reply:
        return Reply({"status": "ok", "subshell_id": self.outlet.list_subshells()})

    def usage_request(self, msg: Message) -> Reply:
        from fastkernel.usage import usage_content

        return Reply(usage_content())

    def connect_request(self, msg: Message) -> Reply:
        ports = {k: v for k, v in self.connection_info.items() if k.endswith("_port")}
        return Reply({"status": "ok", **ports})

    def comm_info_request(self, msg: Message) -> Reply:
        target_name = field(msg, "target_name", str, None)
        if "comm" not in sys.modules:
            return Reply({"status": "ok", "comms": {}})
        from fastkernel import comms

        return Reply({"status": "ok", "comms": comms.info(target_name)})

    def install_comms(self, module: Any) -> None:
        """Patch the ``comm`` package (run when it is first imported; see Runtime)."""
        from fastkernel import comms

        comms.install(self, module)

    def comm_message(self, msg: Message) -> None:
        """comm_open, comm_msg or comm_close from a frontend; output goes to ``msg``."""
        import comm  # noqa: F401  # the first import installs fastkernel.comms (see Runtime)

        from fastkernel import comms

        parent, self.parent = self.parent, msg
        try:
            comms.handle(self, msg)
        except Exception:  # a kernel bug must not stop the kernel
            log.exception("error handling %s", msg["msg_type"])
        finally:
            self.parent = parent
            self.streams.flush()

    def is_complete_request(self, msg: Message) -> Reply:
        from fastkernel.interpreter.completeness import is_complete

        status, indent = is_complete(field(msg, "code", str))
        content: Content = {"status": status}
        if status == "incomplete":
            content["indent"] = indent
        return Reply(content)

    def complete_request(self, msg: Message) -> Reply:
        return coderequests.complete(self.runtime, msg)

    def inspect_request(self, msg: Message) -> Reply:
        return coderequests.inspect(self.runtime, msg)

    def shutdown_request(self, msg: Message) -> Reply:
        restart = field(msg, "restart", bool, False)
        if self.executing(threading.main_thread().ident):  # a shutdown while a cell runs interrupts it
            self.outlet.interrupt_main()
        return Reply({"status": "ok", "restart": restart}, then=self.outlet.stop)

    def interrupt_request(self, msg: Message) -> Reply:
        self.outlet.interrupt_main()
        return Reply({"status": "ok"})

    def history_request(self, msg: Message) -> Reply:
        """tail, range and search over the SQLite history (fastkernel.history)."""
        return coderequests.history(self.history_store, msg)

    def execute_request(self, msg: Message) -> Reply:
        reply, abort = self.runtime.execute(msg)
        if not abort:
            return reply
        # stop_on_error: what is queued now, before the reply goes out, is answered after it. A
        # request the client sends once it has the reply is not queued yet, and runs.
        queued = self.outlet.drain_shell()
        return reply._replace(then=lambda: self.abort_queued(queued))

    def runs_on_control_worker(self, msg_type: str) -> bool:
        return msg_type in CONTROL_WORKER_REQUESTS

    def refuse(self, msg: Message, ename: str, evalue: str, channel: str = "shell") -> None:
        """Answer a request without running it (a deleted or unknown subshell, a kernel stopping)."""
        self.publish_status("busy", msg)
        content = error_content(ename, evalue)
        if msg["msg_type"] == "execute_request":
            content["execution_count"] = self.execution_count
        try:
            self.send_reply(channel, msg, Reply(content, {"status": "error"}))
        finally:
            self.publish_status("idle", msg)

    def abort_queued(self, requests: list[Message]) -> None:
        """Answer ``requests`` (queued behind a failed cell) without running the executes
        among them (stop_on_error); other requests are handled as usual."""
        channel = getattr(self._local, "channel", "shell")
        for queued in requests:
            if queued["msg_type"] != "execute_request":
                self.dispatch(channel, queued)
                continue
            self.publish_status("busy", queued)
            if self.stop_on_error_reply == "aborted":
                content: Content = {"status": "aborted"}
            else:
                content = error_content("ExecutionAborted", "not run: an earlier cell failed (stop_on_error)")
                content["execution_count"] = self.execution_count
            self.send_reply(channel, queued, Reply(content, {"status": content["status"]}))
            self.publish_status("idle", queued)
