"""pdb in cells, for users without the visual debugger: ``breakpoint()``, ``%debug``, ``%pdb``.

pdb prompts through ``input()``, which the kernel answers with an ``input_request`` (console
and notebook alike). When pdb is first imported, :func:`adapt_pdb` changes ``pdb.Pdb``:

- it never stops in the kernel's own frames (``skip`` holds ``fastkernel.*``), so ``next``
  at a cell's last line does not step into the kernel that ran the cell, and its stack
  (``where``, ``up``) starts at the cell: the kernel's frames below it are left out;
- an interrupt at its prompt ends the cell with KeyboardInterrupt, as under IPython (pdb
  alone catches it and prompts again, which in a notebook would leave the cell waiting).

A session ends with its cell: when the cell's code returns to the kernel (a ``next`` past
its last line), and at the latest when the cell is over (:func:`end_pdb_session`: a
``continue`` with breakpoints set). The next cell runs untraced, pdb never shows kernel
code, and nothing raises ``BdbQuit`` in kernel code later. ``q`` ends the cell with BdbQuit,
its traceback ending at the user's line. :func:`post_mortem` is ``%debug`` and ``%pdb on``.
"""

from __future__ import annotations

import functools
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.tracebacks import user_traceback

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter
    from fastkernel.interpreter.hooks import Patches

KERNEL_MODULES = ("fastkernel", "fastkernel.*")


def adapt_pdb(patches: Patches, pdb_class: Any) -> None:
    """Change ``pdb_class`` (``pdb.Pdb``) as the module docstring says; undone by ``patches``."""
    init, cmdloop, interaction = pdb_class.__init__, pdb_class.cmdloop, pdb_class.interaction
    dispatch_return, get_stack = pdb_class.dispatch_return, pdb_class.get_stack

    @functools.wraps(init)
    def kernel_init(self: Any, *args: Any, skip: Any = None, **kwargs: Any) -> None:
        init(self, *args, skip=[*(skip or ()), *KERNEL_MODULES], **kwargs)

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

    @functools.wraps(dispatch_return)
    def kernel_dispatch_return(self: Any, frame: Any, arg: Any) -> Any:
        traced = dispatch_return(self, frame, arg)
        if _is_kernel_frame(frame.f_back):  # the cell returns to the kernel: the session ends
            self.set_quit()
            return None
        return traced

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
    patches.set(pdb_class, "cmdloop", kernel_cmdloop)
    patches.set(pdb_class, "interaction", kernel_interaction)


def _is_kernel_frame(frame: Any) -> bool:
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return isinstance(name, str) and (name == "fastkernel" or name.startswith("fastkernel."))


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
