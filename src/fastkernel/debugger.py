"""The visual debugger: ``debug_request`` on control, speaking DAP to debugpy (JEP 47).

Runs on the control thread and never waits on the main thread, which may be stopped at a
breakpoint: requests go to debugpy's adapter through the transport's link (whose own thread
reads the answers, see transport/daplink.py), and its events become ``debug_event`` on iopub.
debugpy is imported by the first ``initialize``, never before: a kernel whose debugger was
never started runs no tracer and loads none of it.

The kernel answers itself what debugpy does not know: JupyterLab's ``debugInfo``,
``dumpCell``, ``inspectVariables``, ``richInspectVariables``, ``copyToGlobals``, and the
frontend's ``configurationDone``, which it sends to debugpy itself during ``attach`` (debugpy
answers ``attach`` only after ``configurationDone``, which frontends send after the answer).
The DAP messages it builds, and those it sends debugpy in a frontend's stead, are in
dapmessages.py.
Frames of fastkernel (and debugpy) are excluded by ``rules``, so stackTrace shows only the
user's frames and stepping never enters the kernel.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastkernel.dapmessages import (
    Dap,
    copy_to_globals,
    exception_filters,
    modules_response,
    response,
    rich_evaluate,
    rich_response,
    source_response,
)
from fastkernel.interfaces import DebugLink, Outlet
from fastkernel.interpreter.debugcells import (
    CELL_SUFFIX,
    HASH_SEED,
    CellFiles,
    VariableTree,
    end_stepping,
    is_user_variable,
    page,
    release_settrace,
    trace_cells,
)
from fastkernel.logs import log

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter

REQUEST_TIMEOUT_S = 30.0
ATTACH_TIMEOUT_S = 30.0
FASTKERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
EVERY_THREAD_CONTINUED: Dap = {"type": "event", "seq": 0, "event": "continued"}
# Requests that need debugpy running; the others are answered by the kernel at any time.
LOCAL_COMMANDS = frozenset(
    {"debugInfo", "dumpCell", "inspectVariables", "richInspectVariables", "variables", "modules", "source"}
)


class Debugger:
    """State of the debug session, and a handler per DAP command (see the module docstring)."""

    def __init__(
        self,
        outlet: Outlet,
        publish_event: Callable[[Dap], None],
        interpreter: Callable[[], Interpreter | None],
    ) -> None:
        self.outlet = outlet
        self.publish_event = publish_event  # a debug_event on iopub (any thread)
        self.interpreter = interpreter  # None until the runtime is built
        self.cells = CellFiles()
        self.link: DebugLink | None = None
        self.adapter: tuple[str, int] | None = None  # debugpy's address for clients, once listening
        self.started = False
        self.breakpoints: dict[str, list[Dap]] = {}  # source path -> breakpoints set there
        self.stopped_threads: set[int] = set()
        self._lock = threading.Lock()  # stopped_threads: changed by events on the link's thread
        self._initialized = threading.Event()  # debugpy's "initialized" event
        self._seq = 0
        self._variables: VariableTree | None = None
        self._saved_breakpointhook: Any = None
        self._hooked = False  # the interpreter names cells by hash and calls _after_cell

    # -- requests ----------------------------------------------------------------

    def handle(self, request: Dap) -> Dap:
        """The DAP response to ``request`` (a debug_request's content)."""
        command = request.get("command")
        if not isinstance(command, str) or request.get("type", "request") != "request":
            return response(request, False, message="a debug_request holds a DAP request with a command")
        handler = getattr(self, f"do_{command}", None)
        try:
            if handler is not None and (command in LOCAL_COMMANDS or command == "initialize"):
                return handler(request)  # type: ignore[no-any-return]
            if self.started:
                self._hook_interpreter()
            if not self.started or self.link is None:
                return response(
                    request, False, message=f"{command}: the debugger is not started (initialize)"
                )
            return handler(request) if handler is not None else self.forward(request)  # type: ignore[no-any-return]
        except (TimeoutError, ConnectionError) as err:
            if isinstance(err, ConnectionError):
                self._stopped_session()
            return response(request, False, message=f"{command}: {err}")
        except Exception as err:  # arguments of the wrong type, a kernel bug: a DAP answer still
            log.exception("error handling the debug request %r", command)
            return response(request, False, message=f"{command}: {type(err).__name__}: {err}")

    def forward(self, request: Dap, timeout: float = REQUEST_TIMEOUT_S) -> Dap:
        """Send ``request`` to debugpy under a seq of ours; its answer, renumbered as the request."""
        assert self.link is not None
        sent = {**request, "seq": self._next_seq()}
        self.link.send(sent)
        answer = self.link.response(sent["seq"], timeout)
        return {**answer, "request_seq": request.get("seq", 0)}

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- starting and stopping -----------------------------------------------------

    def do_initialize(self, request: Dap) -> Dap:
        if not self.started:
            if self._saved_breakpointhook is None:  # before debugpy, which puts in its own
                self._saved_breakpointhook = sys.breakpointhook
            # Frozen stdlib modules only hide breakpoints set inside the stdlib: no warning
            # about them in the user's cell (debugpy reads this when imported)
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            try:
                import debugpy  # noqa: F401  # the first import of it in this kernel, usually
            except ImportError:
                message = "the debugger needs debugpy, which is not installed: pip install debugpy"
                return response(request, False, message=message)
            error = self._start()
            if error is not None:
                return response(request, False, message=f"could not start debugpy: {error}")
        return self.forward(request)

    def _start(self) -> str | None:
        """Listen with debugpy (once per process), connect to its adapter. An error message, or None."""
        try:
            if self.adapter is None:
                import debugpy

                debugpy.configure(subProcess=False)  # a cell's subprocesses run without the tracer
                host, port = debugpy.listen(("127.0.0.1", 0))
                self.adapter = (str(host), int(port))
            self._initialized.clear()
            self.link = self.outlet.open_debug_link(*self.adapter, self._on_event)
        except Exception as err:  # debugpy's RuntimeErrors and OSErrors: the reply says which
            log.exception("could not start debugpy")
            return f"{type(err).__name__}: {err}"
        self.started = True
        self._hook_interpreter()
        import debugpy

        sys.breakpointhook = debugpy.breakpoint  # breakpoint() stops in the visual debugger
        return None

    def _hook_interpreter(self) -> None:
        """Cells run under their hash-named files, and ``_after_cell`` after each (once the
        runtime exists: a debugger started before it is hooked by a later request)."""
        interpreter = self.interpreter()
        if interpreter is not None and not self._hooked:
            interpreter.sources.name_cells_by(self.cells.write)  # breakpoints bind in cells
            interpreter.events.register("pre_execute", self._before_cell)  # stays: see trace_cells
            interpreter.events.register("post_execute", self._after_cell)
            self._hooked = True

    def do_attach(self, request: Dap) -> Dap:
        arguments = dict(request.get("arguments") or {})
        assert self.adapter is not None and self.link is not None
        arguments["connect"] = {"host": self.adapter[0], "port": self.adapter[1]}
        arguments.setdefault("justMyCode", True)
        arguments["rules"] = [*arguments.get("rules", []), {"path": FASTKERNEL_DIR, "include": False}]
        sent = {**request, "arguments": arguments, "seq": self._next_seq()}
        self.link.send(sent)
        if not self._initialized.wait(ATTACH_TIMEOUT_S):
            raise TimeoutError("debugpy sent no initialized event after attach")
        done: Dap = {"type": "request", "command": "configurationDone", "seq": self._next_seq()}
        self.link.send(done)
        self.link.response(done["seq"], REQUEST_TIMEOUT_S)
        answer = self.link.response(sent["seq"], ATTACH_TIMEOUT_S)
        return {**answer, "request_seq": request.get("seq", 0)}

    def do_configurationDone(self, request: Dap) -> Dap:
        return response(request)  # sent to debugpy during attach (see the module docstring)

    def do_disconnect(self, request: Dap) -> Dap:
        arguments = {**(request.get("arguments") or {}), "terminateDebuggee": False}
        try:
            answer = self.forward({**request, "arguments": arguments})
        finally:
            self._stopped_session()
        return answer

    def _stopped_session(self) -> None:
        """Forget the session: the cells run as <cell-N> again, breakpoint() opens pdb."""
        link, self.link = self.link, None
        if link is not None:
            link.close()
        self.started = False
        self.breakpoints = {}
        with self._lock:
            self.stopped_threads = set()
        interpreter = self.interpreter()
        if interpreter is not None and self._hooked:
            interpreter.sources.name_cells_by(None)
            with contextlib.suppress(ValueError):  # a cell may have unregistered it
                interpreter.events.unregister("post_execute", self._after_cell)
        self._hooked = False
        if self._saved_breakpointhook is not None:
            sys.breakpointhook = self._saved_breakpointhook
            self._saved_breakpointhook = None
            release_settrace()

    def _before_cell(self) -> None:
        """(pre_execute, the cell's thread) Traced by debugpy while started, else not."""
        trace_cells(self.started)

    def _after_cell(self) -> None:
        """(post_execute, the cell's thread) See ``end_stepping``; a cell that an interrupt
        (signal or interrupt_request) took out of a stop: the frontend hears it continued."""
        if end_stepping():
            self.interrupted()

    def interrupted(self) -> None:
        """The interrupt ended a stopped cell: its thread runs on, and the frontend hears so
        (debugpy sends no ``continued`` for it)."""
        with self._lock:
            was_stopped, self.stopped_threads = bool(self.stopped_threads), set()
        if was_stopped and self.started:
            self.publish_event(
                {**EVERY_THREAD_CONTINUED, "body": {"threadId": 0, "allThreadsContinued": True}}
            )

    def close(self) -> None:
        """At shutdown: drop the link and the cell files."""
        self._stopped_session()
        self.cells.remove_all()

    # -- events (the link's thread) -----------------------------------------------------

    def _on_event(self, event: Dap) -> None:
        name, body = event.get("event"), event.get("body") or {}
        if name == "initialized":
            self._initialized.set()
        elif name == "stopped":
            with self._lock:
                if "threadId" in body:
                    self.stopped_threads.add(body["threadId"])
        elif name == "continued":
            with self._lock:
                if body.get("allThreadsContinued", True):
                    self.stopped_threads = set()
                else:
                    self.stopped_threads.discard(body.get("threadId"))
        self.publish_event(event)

    # -- breakpoints and steps --------------------------------------------------------

    def do_setBreakpoints(self, request: Dap) -> Dap:
        answer = self.forward(request)
        path = ((request.get("arguments") or {}).get("source") or {}).get("path")
        if answer.get("success") and isinstance(path, str):
            # debugpy may move a breakpoint to another line: keep the lines it really set
            lines = [
                {"line": b["line"]} for b in answer.get("body", {}).get("breakpoints", []) if "line" in b
            ]
            if lines:
                self.breakpoints[path] = lines
            else:
                self.breakpoints.pop(path, None)
        return answer

    def do_setExceptionBreakpoints(self, request: Dap) -> Dap:
        return self.forward(exception_filters(request))

    def _step(self, request: Dap) -> Dap:
        answer = self.forward(request)
        if answer.get("success"):
            thread = (request.get("arguments") or {}).get("threadId")
            all_threads = (answer.get("body") or {}).get("allThreadsContinued", True)
            with self._lock:
                if all_threads:
                    self.stopped_threads = set()
                else:
                    self.stopped_threads.discard(thread)
        return answer

    do_continue = do_next = do_stepIn = do_stepOut = _step

    # -- variables --------------------------------------------------------------------

    def _stopped(self) -> bool:
        with self._lock:
            return bool(self.stopped_threads)

    def do_variables(self, request: Dap) -> Dap:
        if self._stopped() and self.started:
            answer = self.forward(request)
            body = answer.get("body") or {}
            if isinstance(body.get("variables"), list):
                variables = [v for v in body["variables"] if is_user_variable(v.get("name", ""))]
                body["variables"] = page(variables, request.get("arguments") or {})
            return answer
        reference = (request.get("arguments") or {}).get("variablesReference", 0)
        tree = self._variables
        variables = tree.children(reference) if tree is not None and reference else []
        return response(request, body={"variables": variables})

    def do_inspectVariables(self, request: Dap) -> Dap:
        interpreter = self.interpreter()
        if interpreter is None:
            return response(request, body={"variables": []})
        self._variables = VariableTree(interpreter.namespace)
        return response(request, body={"variables": self._variables.top()})

    def do_richInspectVariables(self, request: Dap) -> Dap:
        arguments = request.get("arguments") or {}
        name = arguments.get("variableName")
        if not isinstance(name, str) or not name.isidentifier():
            return response(request, body={"data": {}, "metadata": {}})
        if self._stopped() and self.started and "frameId" in arguments:
            return rich_response(request, self.forward(rich_evaluate(request, name, arguments["frameId"])))
        interpreter = self.interpreter()
        if interpreter is None or name not in interpreter.namespace:
            return response(request, False, {"data": {}, "metadata": {}}, f"{name} is not defined")
        data, metadata = interpreter.formatter.format(interpreter.namespace[name])
        return response(request, body={"data": data, "metadata": metadata})

    def do_copyToGlobals(self, request: Dap) -> Dap:
        set_expression = copy_to_globals(request)
        if set_expression.get("type") == "response":
            return set_expression
        return {**self.forward(set_expression), "command": "copyToGlobals"}

    # -- the kernel's own answers ------------------------------------------------------

    def do_debugInfo(self, request: Dap) -> Dap:
        with self._lock:
            stopped = sorted(self.stopped_threads)
        body = {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": HASH_SEED,
            "tmpFilePrefix": self.cells.prefix,
            "tmpFileSuffix": CELL_SUFFIX,
            "breakpoints": [
                {"source": path, "breakpoints": lines} for path, lines in self.breakpoints.items()
            ],
            "stoppedThreads": stopped,
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        }
        return response(request, body=body)

    def do_dumpCell(self, request: Dap) -> Dap:
        code = (request.get("arguments") or {}).get("code")
        if not isinstance(code, str):
            return response(request, False, message="dumpCell needs arguments.code, a string")
        return response(request, body={"sourcePath": self.cells.write(code)})

    def do_source(self, request: Dap) -> Dap:
        return source_response(request)

    def do_modules(self, request: Dap) -> Dap:
        return modules_response(request)
