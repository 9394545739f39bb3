"""pdb in cells, for users without the visual debugger: ``breakpoint()``, ``%debug``, ``%pdb``.

pdb prompts through ``input()``, which the kernel answers with an ``input_request`` (console
and notebook alike). When pdb is first imported, :func:`adapt_pdb` changes ``pdb.Pdb``:

- it never stops in the kernel's own frames (``skip`` holds ``fastkernel.*``), so ``next``
  at a cell's last line does not step into the kernel that ran the cell, and its stack
  (``where``, ``up``) starts at the cell: the kernel's frames below it are left out;
- an interrupt at its prompt ends the cell with KeyboardInterrupt, as under IPython (pdb
  alone catches it and prompts again, which in a notebook would leave the cell waiting);
- it names cells by their labels, as the tracebacks do (``> Cell In[3](2)<module>()``,
  ``Breakpoint 1 at Cell In[3]:2``), and ``break Cell In[3]:2`` finds that cell;
- a cell's body and its last expression (two code objects, see ``Interpreter.run_code``)
  step as one: ``next`` at the body's last line stops at the last expression, with no stop
  at the body's return and none at the last expression's call;
- the ``__return__`` and ``__exception__`` that pdb notes in a frame's locals are taken out
  again at a cell's top level, where the locals are the user's namespace.

A session ends with its cell: when the cell's code returns to the kernel (a ``next`` past
its last line), and at the latest when the cell is over (:func:`end_pdb_session`: a
``continue`` with breakpoints set). The next cell runs untraced, pdb never shows kernel
code, and nothing raises ``BdbQuit`` in kernel code later. ``q`` ends the cell with BdbQuit,
its traceback ending at the user's line. :func:`post_mortem` is ``%debug`` and ``%pdb on``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.tracebacks import user_traceback

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter
    from fastkernel.interpreter.hooks import Patches

KERNEL_MODULES = ("fastkernel", "fastkernel.*")
RUNNERS = ("run_code", "run_async")  # the Interpreter methods that run a cell's two code objects
CO_NEWLOCALS = 0x2  # inspect.CO_NEWLOCALS: a function's frame, not a cell's top level
CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: a cell that uses top-level await
_AT_FILE_LINE = re.compile(r" at (<cell-\d+>|\S+?\.py):(\d+)")


def adapt_pdb(patches: Patches, pdb_class: Any, labels: Mapping[str, str]) -> None:
    """Change ``pdb_class`` (``pdb.Pdb``) as the module docstring says; undone by ``patches``.

    ``labels`` maps a cell's file name to its label (``Cell In[n]``), as the tracebacks show it.
    """
    _adapt_prompt(patches, pdb_class)
    _adapt_stepping(patches, pdb_class)
    _adapt_names(patches, pdb_class, labels)


def _adapt_prompt(patches: Patches, pdb_class: Any) -> None:
    """An interrupt at pdb's prompt ends the cell."""
    cmdloop, interaction = pdb_class.cmdloop, pdb_class.interaction

    @functools.wraps(cmdloop)
    def kernel_cmdloop(self: Any, intro: Any = None) -> None:
        try:
            cmdloop(self, intro)
        except KeyboardInterrupt:  # leave the prompt; interaction() raises it again, outside pdb
            self.fastkernel_interrupted = True

    @functools.wraps(interaction)
    def kernel_interaction(self: Any, *args: Any, **kwargs: Any) -> None:
        self.fastkernel_interrupted = False
        interaction(self, *args, **kwargs)
        if self.fastkernel_interrupted:
            self.set_quit()  # stop tracing: the cell ends here
            raise KeyboardInterrupt

    patches.set(pdb_class, "cmdloop", kernel_cmdloop)
    patches.set(pdb_class, "interaction", kernel_interaction)


def _adapt_stepping(patches: Patches, pdb_class: Any) -> None:
    """No kernel frames; a cell's body and last expression step as one; the session ends with
    the cell."""
    init, dispatch_return, get_stack = pdb_class.__init__, pdb_class.dispatch_return, pdb_class.get_stack
    user_call, user_return = pdb_class.user_call, pdb_class.user_return

    @functools.wraps(init)
    def kernel_init(self: Any, *args: Any, skip: Any = None, **kwargs: Any) -> None:
        init(self, *args, skip=[*(skip or ()), *KERNEL_MODULES], **kwargs)

    @functools.wraps(dispatch_return)
    def kernel_dispatch_return(self: Any, frame: Any, arg: Any) -> Any:
        traced = dispatch_return(self, frame, arg)
        if not frame.f_code.co_flags & CO_NEWLOCALS:  # a cell's top level: its locals are the
            for name in ("__return__", "__exception__"):  # user's namespace, where pdb noted them
                frame.f_locals.pop(name, None)
        caller = frame.f_back
        if _is_kernel_frame(caller) and not _last_expression_follows(frame, caller):
            self.set_quit()  # the cell returns to the kernel: the session ends
            return None
        return traced

    @functools.wraps(user_call)
    def kernel_user_call(self: Any, frame: Any, argument_list: Any) -> None:
        if not _is_kernel_frame(frame.f_back):  # a cell's last expression: stop at its line instead
            user_call(self, frame, argument_list)

    @functools.wraps(user_return)
    def kernel_user_return(self: Any, frame: Any, return_value: Any) -> None:
        if not _last_expression_follows(frame, frame.f_back):  # no stop between body and last line
            user_return(self, frame, return_value)

    @functools.wraps(get_stack)
    def kernel_get_stack(self: Any, frame: Any, tb: Any) -> tuple[list[Any], int]:
        stack, index = get_stack(self, frame, tb)
        kernel = [i for i, (entry, _) in enumerate(stack) if _is_kernel_frame(entry)]
        if not kernel or kernel[-1] >= index:
            return stack, index
        return stack[kernel[-1] + 1 :], index - kernel[-1] - 1  # the user's frames: where, up, down

    patches.set(pdb_class, "__init__", kernel_init)
    patches.set(pdb_class, "get_stack", kernel_get_stack)
    patches.set(pdb_class, "dispatch_return", kernel_dispatch_return)
    patches.set(pdb_class, "user_call", kernel_user_call)
    patches.set(pdb_class, "user_return", kernel_user_return)


def _adapt_names(patches: Patches, pdb_class: Any, labels: Mapping[str, str]) -> None:
    """Cells named by their labels in stack entries and breakpoint messages, and found by them."""
    format_stack_entry, message = pdb_class.format_stack_entry, pdb_class.message
    lookupmodule = pdb_class.lookupmodule

    @functools.wraps(format_stack_entry)
    def kernel_format_stack_entry(self: Any, frame_lineno: Any, *args: Any) -> str:
        text: str = format_stack_entry(self, frame_lineno, *args)
        filename = frame_lineno[0].f_code.co_filename
        label, shown = labels.get(filename), self.canonic(filename)
        if label is None or not text.startswith(shown):
            return text
        return label + text[len(shown) :]  # "Cell In[3](2)<module>()", as tracebacks name it

    @functools.wraps(message)
    def kernel_message(self: Any, msg: str) -> None:
        message(self, relabel_breakpoints(str(msg), labels))

    @functools.wraps(lookupmodule)
    def kernel_lookupmodule(self: Any, filename: str) -> Any:
        return cell_file(filename, labels) or lookupmodule(self, filename)

    patches.set(pdb_class, "format_stack_entry", kernel_format_stack_entry)
    patches.set(pdb_class, "message", kernel_message)
    patches.set(pdb_class, "lookupmodule", kernel_lookupmodule)


def _is_kernel_frame(frame: Any) -> bool:
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return isinstance(name, str) and (name == "fastkernel" or name.startswith("fastkernel."))


def _last_expression_follows(frame: Any, caller: Any) -> bool:
    """Whether ``frame`` runs the body of a cell (or of a cell magic) whose last expression
    ``caller`` runs next: ``Interpreter.run_code``/``run_async`` compile the two apart.

    Not for a body that awaits: its frame also "returns" at each ``await`` that suspends it,
    and the session ends there (as it did before the last expression was reached at all).
    """
    if frame.f_code.co_flags & CO_COROUTINE:
        return False
    if caller is None or caller.f_code.co_name not in RUNNERS or not _is_kernel_frame(caller):
        return False
    local = caller.f_locals
    return local.get("body") is frame.f_code and local.get("last") is not None


def relabel_breakpoints(text: str, labels: Mapping[str, str]) -> str:
    """``Breakpoint 1 at <cell-3>:2`` (pdb's break, clear, tbreak) as ``... at Cell In[3]:2``."""
    if " at " not in text:
        return text
    return _AT_FILE_LINE.sub(lambda m: f" at {labels.get(m.group(1), m.group(1))}:{m.group(2)}", text)


def cell_file(name: str, labels: Mapping[str, str]) -> str | None:
    """The file of the cell that ``name`` (a label such as ``Cell In[3]``, or a file name) names:
    ``break Cell In[3]:2`` sets a breakpoint in that cell. The newest cell of that label wins."""
    name = name.strip()
    if name in labels:
        return name
    for filename, label in reversed(list(labels.items())):
        if label == name:
            return filename
    return None


def end_pdb_session() -> None:
    """(the cell's thread, after it ran) Stop a pdb session that still traces this thread."""
    bdb = sys.modules.get("bdb")
    if bdb is None:  # no pdb was ever used: the usual case, one dict lookup per cell
        return
    debugger = getattr(sys.gettrace(), "__self__", None)
    if isinstance(debugger, bdb.Bdb):
        sys.settrace(None)  # first: pdb must not trace set_quit itself
        debugger.set_quit()  # its frames drop the tracer at their next line


def cut_pdb_frames(exc: BaseException) -> None:
    """The BdbQuit of ``q`` at a pdb prompt loses pdb's own frames: its traceback (shown, and
    kept for ``%tb`` and ``%debug``) ends in the user's line where pdb was quit."""
    bdb = sys.modules.get("bdb")
    if bdb is not None and isinstance(exc, bdb.BdbQuit):
        _cut_at_file(exc.__traceback__, bdb.__file__ or "")


def _cut_at_file(tb: TracebackType | None, filename: str) -> None:
    """End the traceback ``tb`` before its first entry in ``filename``."""
    while tb is not None and tb.tb_next is not None:
        if tb.tb_next.tb_frame.f_code.co_filename == filename:
            tb.tb_next = None
            return
        tb = tb.tb_next


def post_mortem(tb: TracebackType | None = None) -> None:
    """pdb on ``tb`` (default: the last cell error's), from its first frame of user code."""
    tb = tb if tb is not None else getattr(sys, "last_traceback", None)
    if tb is None:
        print("No traceback has been produced, nothing to debug.")
        return
    import pdb

    debugger = pdb.Pdb()
    debugger.reset()
    try:
        debugger.interaction(None, user_traceback(tb))
    finally:
        debugger.set_quit()


def debug_cell_error(interpreter: Interpreter, exc: BaseException, shown: bool) -> bool:
    """``%pdb on``: show the cell's error now (an error output, unless ``shown``), then pdb
    post-mortem on it. Returns True: the error has been shown."""
    if not shown:
        interpreter.shell.show_error(exc)
    try:
        post_mortem(exc.__traceback__)
    except Exception as err:  # e.g. StdinNotImplementedError: the frontend takes no input
        print(f"%pdb: cannot debug here: {type(err).__name__}: {err}", file=sys.stderr)
    return True


def run_under_pdb(statement: str, namespace: dict[str, Any], local: dict[str, Any] | None) -> None:
    """``%debug STATEMENT``: run it under pdb, stopped before its first line."""
    import pdb

    pdb.Pdb().run(statement, namespace, local)
