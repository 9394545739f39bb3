"""The exec-based interpreter: compile a cell with ``ast``, run it in ``__main__``.

No sockets, no messages, no threads: the kernel core hands it source text and callbacks
and gets back an outcome. Execution semantics are described in docs/interpreter.md.
"""

from __future__ import annotations
import __future__ as future_module

import ast
import builtins
import dataclasses
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.events import EventManager, ExecutionInfo, ExecutionResult
from fastkernel.interpreter.hooks import ExitCall, Patches
from fastkernel.interpreter.inputhistory import InputHistory, SessionInputs
from fastkernel.interpreter.magics.transform import MAGICS, strip_leading_indent, transform_cell
from fastkernel.interpreter.outcache import OutputCache
from fastkernel.interpreter.pdbsupport import cut_pdb_frames, debug_cell_error, end_pdb_session
from fastkernel.interpreter.peakrss import peak_rss_bytes
from fastkernel.interpreter.processhooks import ProcessHooks
from fastkernel.interpreter.shell import FastKernelShell
from fastkernel.interpreter.sources import CellSources, has_trailing_semicolon
from fastkernel.interpreter.tracebacks import CellError, TracebackStyle, format_error

if TYPE_CHECKING:
    import asyncio

    from fastkernel.interpreter.asyncsupport import EventLoopHost
    from fastkernel.interpreter.display import Publisher
    from fastkernel.interpreter.formatting import Bundle, DisplayFormatter
    from fastkernel.interpreter.magics.registry import Magics

ResultHook = Callable[[Any], None]

CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: the code used top-level await


@dataclass
class CellOutcome:
    """How a cell ended: ``error`` is None on success.

    ``duration_s`` is the wall time of compiling and running the cell. ``peak_rss_growth_bytes``
    is how far the cell raised the process's peak resident set size (:func:`peak_rss_bytes`):
    a high-water mark, so it is 0 unless the cell went above every earlier peak; None where
    the peak cannot be read (Windows).
    """

    error: CellError | None = None
    error_shown: bool = False  # shown by a replaced get_ipython().showtraceback (rich.traceback)
    payload: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    peak_rss_growth_bytes: int | None = None


class Interpreter:
    """Runs cells in a persistent namespace that is a real ``__main__`` module."""

    def __init__(
        self,
        on_result: ResultHook | None = None,
        publish_display: Publisher | None = None,
        input_history: InputHistory | None = None,
        traceback_style: TracebackStyle | None = None,
    ) -> None:
        """An interpreter with a fresh ``__main__`` namespace, not installed yet.

        Parameters
        ----------
        on_result
            Called with the value of a cell's last expression (the kernel's ``execute_result``).
        publish_display
            Sends display messages, ``(msg_type, content, output_target)``: the kernel's. None
            (no kernel): ``display()`` and ``display_pub`` send nothing, and
            ``get_ipython().showtraceback()`` writes to stderr.
        input_history
            What %history, %save, %load, %recall and %rerun read; None: this session's ``In``.
        traceback_style
            How errors are shown (``%xmode``, colours); None: Context mode, coloured unless NO_COLOR.
        """
        self.module = types.ModuleType("__main__", doc="fastkernel user namespace")
        self.namespace: dict[str, Any] = self.module.__dict__
        self.namespace["__builtins__"] = builtins
        # In the namespace, not in builtins (as IPython does): library code that calls exit()
        # still raises SystemExit.
        self.namespace["exit"] = self.namespace["quit"] = ExitCall(self.ask_exit)
        self.on_result = on_result or (lambda value: None)
        self.publish_display = publish_display
        self.history = OutputCache(self.namespace)  # In, Out, _, __, ___, _N, _iN
        self.input_history: InputHistory = input_history or SessionInputs(self.history)
        self.traceback_style = traceback_style or TracebackStyle()
        self.autoawait, self.async_runner = True, "asyncio"  # %autoawait: allowed; asyncio or trio
        self.future_flags = 0
        self.sources = CellSources()
        self.labels = self.sources.labels  # cell filename -> "Cell In[n]"
        self._loop_host: EventLoopHost | None = None  # made by the first await cell
        self.patches = Patches()
        self.auto_pdb = False  # %pdb on: pdb post-mortem after a cell's error
        # Per thread (subshells run cells concurrently): whether user code is on this thread's
        # stack (what SIGINT may interrupt on the main thread), and its running cell's payload.
        self._cell = threading.local()
        self.executing_threads: set[int] = set()  # idents of the threads where user code runs
        # Held while an object is formatted for display and while post_execute hooks run (they
        # draw figures), and by comm handlers: a widget callback on a subshell thread never sees
        # an object the main shell is halfway through rendering (matplotlib unsets a canvas's
        # manager while it saves a PNG; ipympl's callbacks then fail).
        self.display_lock = threading.RLock()
        self._process_hooks = ProcessHooks(self)
        self.events = EventManager()  # pre/post_execute, pre/post_run_cell (IPython's names)
        self.shell = FastKernelShell(self)  # get_ipython(), in the namespace like exit and quit
        self.namespace["get_ipython"] = self.shell.get_ipython

    @property
    def executing(self) -> bool:
        """True while user code is on the calling thread's stack."""
        return bool(getattr(self._cell, "executing", False))

    @executing.setter
    def executing(self, value: bool) -> None:
        self._cell.executing = value
        if value:
            self.executing_threads.add(threading.get_ident())
        else:
            self.executing_threads.discard(threading.get_ident())

    @property
    def _payload(self) -> list[dict[str, Any]] | None:
        payload: list[dict[str, Any]] | None = getattr(self._cell, "payload", None)
        return payload

    @_payload.setter
    def _payload(self, payload: list[dict[str, Any]] | None) -> None:
        self._cell.payload = payload

    # -- process-wide set-up ------------------------------------------------

    def install_as_main(self) -> None:
        """Make this interpreter the process's: ``sys.modules['__main__']``, builtins, hooks
        (interpreter/processhooks.py); :func:`running.current()
        <fastkernel.interpreter.running.current>` from now on."""
        self._process_hooks.install()

    def uninstall(self) -> None:
        """Undo :meth:`install_as_main` and close the event loop (tests, shutdown)."""
        self._process_hooks.uninstall()
        if self._loop_host is not None:
            self._loop_host.close()

    # -- the asyncio loop, which the transport runs between cells --------------

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The kernel's asyncio loop, or None until a cell first uses top-level await."""
        return self._loop_host.loop if self._loop_host is not None else None

    @property
    def loop_host(self) -> EventLoopHost:
        """The main thread's loop host; a thread of its own for each other thread (a subshell):
        one asyncio loop cannot run on two threads at once."""
        from fastkernel.interpreter.asyncsupport import EventLoopHost

        if threading.current_thread() is not threading.main_thread():
            host: EventLoopHost | None = getattr(self._cell, "loop_host", None)
            if host is None:
                host = self._cell.loop_host = EventLoopHost()
            return host
        if self._loop_host is None:
            self._loop_host = EventLoopHost()
        return self._loop_host

    # -- compiling ---------------------------------------------------------

    def _flags(self) -> int:
        return self.future_flags | (ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if self.autoawait else 0)

    def _collect_future_flags(self, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                for alias in node.names:
                    feature = getattr(future_module, alias.name, None)
                    if feature is not None:
                        self.future_flags |= feature.compiler_flag

    def compile_cell(self, source: str, filename: str) -> tuple[types.CodeType, types.CodeType | None]:
        """Return (body, last_expression) code objects; last is None when nothing displays."""
        source = self._transform(source)
        tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST | self._flags(), dont_inherit=True)
        self._collect_future_flags(tree)
        last = None
        tail = tree.body[-1] if tree.body else None
        if isinstance(tail, ast.Expr) and not has_trailing_semicolon(source, tail):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, filename, "exec", self._flags(), dont_inherit=True)
        last_code = compile(last, filename, "eval", self._flags(), dont_inherit=True) if last else None
        return body, last_code

    def _transform(self, source: str) -> str:
        """Strip a common leading indentation (IPython does), then rewrite ``%magic``, ``!cmd`` and
        ``obj?`` into calls on :attr:`magics`; every line stays on its line."""
        stripped = strip_leading_indent(source)
        rewritten = transform_cell(stripped)
        if rewritten is not stripped:
            self.namespace[MAGICS] = self.magics
        return rewritten

    @cached_property
    def formatter(self) -> DisplayFormatter:
        """MIME bundles for results and displays (``get_ipython().display_formatter``), made on first use."""
        from fastkernel.interpreter.formatting import DisplayFormatter

        return DisplayFormatter(self.display_lock)

    @cached_property
    def magics(self) -> Magics:
        """Line and cell magics (docs/magics.md), made on first use."""
        from fastkernel.interpreter.magics.registry import Magics

        return Magics(self)

    # -- running -----------------------------------------------------------

    def _execute(self, source: str, filename: str, display: bool) -> None:
        value = self.run_code(source, filename)
        if value is not None and display:
            self.on_result(value)

    def run_code(self, source: str, filename: str, local: dict[str, Any] | None = None) -> Any:
        """Compile ``source`` as cell code and run it in the user namespace; return its value.

        Parameters
        ----------
        source
            Cell code: magics are rewritten and ``__future__`` imports stay in force, as in
            :meth:`run_cell`, which runs each cell through this method.
        filename
            The name its code objects get (from ``sources.register``, so tracebacks show it).
        local
            Separate locals (a magic called inside a function); None runs at the top level.

        Returns
        -------
        The value of a last expression statement, or None. Code that uses top-level ``await``
        runs as one coroutine on the kernel's event loop.
        """
        body, last = self.compile_cell(source, filename)
        if (body.co_flags | (last.co_flags if last else 0)) & CO_COROUTINE:
            # One coroutine for the whole cell, so its last line runs in the loop too.
            return self.loop_host.run(self.run_async(body, last, local), self.async_runner)
        eval(body, self.namespace, local)
        return eval(last, self.namespace, local) if last is not None else None

    async def run_async(
        self, body: types.CodeType, last: types.CodeType | None, local: dict[str, Any] | None = None
    ) -> Any:
        """Run code from :meth:`compile_cell` that may await; return the last expression's value."""
        done = eval(body, self.namespace, local)
        if body.co_flags & CO_COROUTINE:
            await done
        if last is None:
            return None
        value = eval(last, self.namespace, local)
        if last.co_flags & CO_COROUTINE:
            value = await value
        return value

    def run_cell(
        self,
        source: str,
        label: str = "Cell In[ ]",
        display: bool = True,
        count: int | None = None,
        store_history: bool = False,
    ) -> CellOutcome:
        """Compile and run ``source``; the last expression's value goes to ``on_result``.

        With ``store_history`` the source becomes ``In[count]`` before it runs (as in IPython,
        even if it fails to compile), and a result reported while it runs is ``Out[count]``.
        """
        self.history.start_cell(count if store_history else None, source)
        self.sources.ensure_cached()  # before this cell's entry, which would hide a cleared cache
        filename = self.sources.register(source, label)
        outcome = CellOutcome()
        self._payload = outcome.payload
        info = ExecutionInfo(source, store_history=store_history, silent=not display)
        self.events.trigger("pre_execute")
        if display:
            self.events.trigger("pre_run_cell", info)
        # Each cell is a new place for warnings: shown once per cell and line, not once per kernel.
        self.namespace.pop("__warningregistry__", None)
        peak_before = peak_rss_bytes()
        started = time.perf_counter()
        raised: BaseException | None = None
        # Nested, so that an interrupt landing in the inner finally (Python 3.10 runs signal
        # handlers between almost any two bytecodes) is still this cell's KeyboardInterrupt and
        # never escapes into kernel code; executing is cleared on both paths.
        try:
            try:
                self.executing = True
                self._execute(source, filename, display)
            finally:
                self.executing = False  # before formatting: SIGINT no longer interrupts kernel code
        except BaseException as exc:  # user code may raise anything, even SystemExit
            self.executing = False
            raised = exc
        end_pdb_session()  # a pdb session that stepped past the cell's end ends with it
        outcome.duration_s = time.perf_counter() - started
        if raised is not None:
            cut_pdb_frames(raised)  # q at a pdb prompt: the traceback ends at the user's line
            outcome.error_shown = self.shell.show_cell_error(raised)
            if self.auto_pdb and not isinstance(raised, KeyboardInterrupt):
                outcome.error_shown = debug_cell_error(self, raised, outcome.error_shown)
        result = ExecutionResult(info, count if store_history else None, error_in_exec=raised)
        with self.display_lock:
            self.events.trigger("post_execute")
        if display:
            self.events.trigger("post_run_cell", result)
        self._payload = None
        result.error_in_exec = None
        if raised is not None:
            self.shell.remember_error(raised)  # sys.last_value & co., for %tb and post-mortem
            outcome.error = self.format_exception(raised)
            raised = None  # its traceback holds this frame: do not keep the cycle alive
        peak_after = peak_rss_bytes()
        if peak_before is not None and peak_after is not None:
            outcome.peak_rss_growth_bytes = max(0, peak_after - peak_before)
        return outcome

    def add_payload(self, item: dict[str, Any]) -> bool:
        """Put ``item`` on the running cell's execute_reply payload, replacing one of the same source.

        One payload per source and cell, as in ipykernel (a second ``set_next_input`` wins).
        Returns False outside a cell (a thread, a task between cells): no reply to carry it.
        """
        if self._payload is None:
            return False
        self._payload[:] = [p for p in self._payload if p.get("source") != item["source"]]
        self._payload.append(item)
        return True

    def ask_exit(self, keep_kernel: bool = False) -> None:
        """``exit()`` in a cell: ask the frontend, through the reply's payload, to end the session."""
        self.add_payload({"source": "ask_exit", "keepkernel": keep_kernel})

    def format_exception(self, exc: BaseException, mode: str | None = None) -> CellError:
        """``exc`` as an error output, in ``mode`` (default: the current ``%xmode``)."""
        self.sources.ensure_cached()
        style = self.traceback_style
        if mode is not None and mode != style.mode:
            style = dataclasses.replace(style, mode=mode)
        return format_error(exc, self.labels, style)

    def evaluate(self, expression: str) -> tuple[Bundle, Bundle]:
        """Evaluate one user expression and format its value (errors propagate)."""
        value = eval(
            compile(expression, "<user_expression>", "eval", self.future_flags, True), self.namespace
        )
        return self.formatter.format(value)

    def evaluate_all(self, expressions: dict[str, Any]) -> dict[str, Any]:
        """``user_expressions``: a MIME bundle per name, or an error dict for that name alone."""
        results: dict[str, Any] = {}
        for name, expression in expressions.items():
            try:
                if not isinstance(expression, str):
                    raise TypeError(f"user expression must be a string, got {type(expression).__name__}")
                data, metadata = self.evaluate(expression)
                results[name] = {"status": "ok", "data": data, "metadata": metadata}
            except BaseException as err:  # any failure is that expression's own result
                error = self.format_exception(err)
                results[name] = {
                    "status": "error",
                    "ename": error.ename,
                    "evalue": error.evalue,
                    "traceback": error.traceback,
                }
        return results
