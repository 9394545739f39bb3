"""The half of the core that runs code: the interpreter, cell output and input, history.

It is built once, on the main thread, when the kernel first needs it or is first idle after
answering a request (see ``Kernel.on_idle``): a kernel answers its first ``kernel_info_request``
without importing any of this, and everything here is ready before the first cell runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from fastkernel import ipycompat
from fastkernel.history import HistoryStore
from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.importhooks import after_import
from fastkernel.interpreter.inputs import StdinNotImplementedError
from fastkernel.interpreter.streams import CURRENT_CELL, OUTPUT_TARGET, KernelStream
from fastkernel.interpreter.tracebacks import TracebackStyle, parse_mode
from fastkernel.logs import log
from fastkernel.messages import Message, error_content, utcnow_iso
from fastkernel.outputs import StreamCoalescer
from fastkernel.requests import Reply, field

if TYPE_CHECKING:
    from fastkernel.kernel import Kernel, RuntimeOptions

Content = dict[str, Any]


class OutputCapture(Protocol):
    """Output written to file descriptors 1 and 2, handed to the streams (transport/fdcapture.py)."""

    def start(self) -> None: ...

    def drain(self) -> None:
        """Return once what was written before the call has been handed over."""

    def stop(self) -> None: ...


def answers(msg: Message, request_id: str, asked: list[bytes] | None) -> bool:
    """Whether ``msg`` is the input_reply to ``request_id``, sent by the zmq identity ``asked``.

    jupyter_client's ``KernelClient.input`` sends its reply without a parent header, so an
    unparented input_reply answers the outstanding request; a parented one must match it.
    Either way it must come from the frontend that was asked: its stdin socket carries the
    identity of its shell socket (the input_request could not have reached it otherwise),
    so another client's reply, even one that names the request, answers nothing.
    """
    parent_id = msg["parent_header"].get("msg_id") if isinstance(msg["parent_header"], dict) else None
    if asked is not None and msg.get("idents") != asked:
        return False
    return msg["msg_type"] == "input_reply" and parent_id in (None, "", request_id)


class Runtime:
    """The interpreter, the stdout/stderr streams, the history store, and output capture."""

    def __init__(self, kernel: Kernel, options: RuntimeOptions) -> None:
        self.kernel = kernel
        outlet = kernel.outlet
        # history_request and %history; sqlite3 is imported on first use. Default: this session's, in memory.
        self.history_store = options.history() if options.history is not None else HistoryStore()
        self.interpreter = Interpreter(
            on_result=self.publish_result,
            publish_display=self.publish_display,
            # with history off (--no-history) the magics read this session's In instead
            input_history=self.history_store if self.history_store.enabled else None,
            traceback_style=TracebackStyle(
                parse_mode(options.traceback_mode),
                options.traceback_colors.lower(),
                options.traceback_hide_libraries,
            ),
        )
        self.interpreter.history.set_limits(options.output_cache_entries, options.output_cache_bytes)
        self.streams = StreamCoalescer(
            kernel.publish_stream,
            self._schedule_flush,
            options.stream_interval,
            max_message=options.max_stream_message,
            max_rate=options.max_stream_rate,
            output_limit=options.output_limit,
            wait_for_room=outlet.wait_for_room,  # backpressure from slow iopub subscribers
            shielded=outlet.shielded,  # no interrupt in the middle of a flush
        )
        self.stdout = KernelStream("stdout", self.streams.write)
        self.stderr = KernelStream("stderr", self.streams.write)
        self.capture: OutputCapture | None = None
        self._cell = threading.local()  # the count of the cell each thread runs (subshells)
        self._stdin_lock = threading.Lock()  # one prompt at a time on the stdin socket
        self.completer: Any = None  # interpreter.completion.Completer, made by the first complete_request

    def install_hooks(self) -> None:
        """What reaches back to the kernel (run once ``kernel.runtime`` is this runtime)."""
        # comm is patched when first imported (by user code or the first comm message), not at start.
        after_import("comm", self.kernel.install_comms)
        ipycompat.install(self.kernel)  # get_ipython().kernel; IPython adapted when a cell imports it

    def capture_fds(
        self, make: Callable[[Callable[[str, str], None], Callable[[], None]], OutputCapture]
    ) -> None:
        """Send what is written to fds 1 and 2 to the running cell, through ``make(write, flush)``."""
        self.capture = make(self.streams.write, self.streams.flush)
        self.streams.add_source(self.capture.drain)  # the barrier before results and replies
        self.stdout.fd, self.stderr.fd = 1, 2  # so subprocess.run(stdout=sys.stdout) works
        self.capture.start()

    def close(self) -> None:
        """Publish what is pending (fd output included), stop capturing, write the history."""
        self.streams.flush()
        if self.capture is not None:
            self.capture.stop()  # fds 1 and 2 back; what was left in the pipes is queued
            self.streams.flush()
        self.history_store.close()

    # -- output -------------------------------------------------------------------

    def _schedule_flush(self, delay: float) -> None:
        self.kernel.outlet.schedule_stream_flush(delay, self.streams.flush)

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
        return self.kernel.parent

    def publish_display(self, msg_type: str, content: Content, target: Any) -> None:
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
        self.kernel.publish(msg_type, content, target)

    def publish_result(self, value: Any) -> None:
        data, metadata = self.interpreter.formatter.format(value, strict_text=True)
        self.interpreter.history.record_output(value)  # _, Out[n], _n when the cell stores history
        if not data:  # it displayed itself (_ipython_display_): no execute_result, as in IPython
            return
        self.streams.sync()  # prints of the cell and of its formatters (fd output too) before the result
        self.history_store.record_output(self.interpreter.history.current, data)
        count = getattr(self._cell, "count", self.kernel.execution_count)  # this thread's cell
        content = {"execution_count": count, "data": data, "metadata": metadata}
        self.streams.wait_for_room()
        self.kernel.publish("execute_result", content, self.kernel.parent)

    # -- input ---------------------------------------------------------------------

    def raw_input(self, prompt: str, password: bool) -> str:
        """Ask the frontend that sent the running request for a line of input."""
        kernel = self.kernel
        parent = kernel.parent
        if parent is None or not kernel.allow_stdin:
            raise StdinNotImplementedError(
                "input() is not available: the frontend that sent this request does not accept "
                "input (allow_stdin is false)"
            )
        self.streams.sync()  # output before the prompt (fd output too) shows before it
        # The main shell and subshells may prompt at once: one prompt and its answer at a time
        # on the stdin socket, which moves between their threads with this lock.
        with self._stdin_lock:
            kernel.outlet.drain_stdin()
            request = kernel.factory.msg("input_request", {"prompt": prompt, "password": password}, parent)
            asked = parent.get("idents")
            kernel.outlet.send("stdin", request, asked)
            while True:
                reply = kernel.outlet.next_stdin()
                if answers(reply, request["header"]["msg_id"], None if asked is None else list(asked)):
                    break
                log.debug("ignoring a stdin message that does not answer the prompt: %s", reply["msg_type"])
        value = reply["content"].get("value", "") if isinstance(reply["content"], dict) else ""
        return str(value)

    # -- cells -----------------------------------------------------------------------

    def execute(self, msg: Message) -> tuple[Reply, bool]:
        """Run an execute_request's cell: its reply, and whether to abort the queued requests."""
        kernel = self.kernel
        code = field(msg, "code", str)
        silent = field(msg, "silent", bool, False)
        store_history = field(msg, "store_history", bool, not silent) and not silent
        expressions = field(msg, "user_expressions", dict, {})
        stop_on_error = field(msg, "stop_on_error", bool, True)
        allow_stdin = field(msg, "allow_stdin", bool, True)
        count = kernel.next_count() if store_history else kernel.execution_count
        self._cell.count = count
        if not silent:
            kernel.publish("execute_input", {"code": code, "execution_count": count}, msg)
        self.history_store.flush_if_due()  # cells queued before this one (see HistoryStore)
        if store_history:  # before it runs, as in IPython: %history in the cell lists the cell
            self.history_store.record(count, code)  # written to disk later, when the kernel is idle
        started = utcnow_iso()
        published_before = kernel.published
        kernel.parent = msg
        kernel.allow_stdin = allow_stdin
        on_main = threading.current_thread() is threading.main_thread()
        with self.streams.cell(msg, attribute=on_main):  # output to msg, also from its threads and tasks
            outcome = self.interpreter.run_cell(
                code, f"Cell In[{count}]", display=not silent, count=count, store_history=store_history
            )
        if outcome.error is not None:
            self.streams.flush()
            error = outcome.error
            if not outcome.error_shown:  # else shown by a replaced showtraceback (rich.traceback)
                shown = {"ename": error.ename, "evalue": error.evalue, "traceback": error.traceback}
                kernel.publish("error", shown, msg)
            content = {**error_content(error.ename, error.evalue, error.traceback), "execution_count": count}
        else:
            content = {
                "status": "ok",
                "execution_count": count,
                "payload": outcome.payload,
                "user_expressions": self.interpreter.evaluate_all(expressions),
            }
        self.streams.flush()
        if kernel.published != published_before:
            kernel.outlet.flush_iopub()  # every output of the cell goes out before its reply
        metadata = {
            "started": started,
            "status": content["status"],
            "dependencies_met": True,
            "duration_s": outcome.duration_s,
            "peak_rss_growth_bytes": outcome.peak_rss_growth_bytes,
        }
        # Like ipykernel, a silent cell's failure does not abort what the user queued.
        abort = content["status"] == "error" and stop_on_error and not silent
        return Reply(content, metadata), abort
