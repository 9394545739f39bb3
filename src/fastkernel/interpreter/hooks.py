"""Small changes to builtins and stdlib modules so that cells behave as in IPython.

- ``exit()`` / ``quit()`` ask the frontend to end the session (an ``ask_exit`` payload)
  instead of raising SystemExit in the kernel;
- ``help()`` writes plain text to the cell's stdout, never through a pager;
- warnings raised by cell code are labelled ``Cell In[n], line k``;
- ``inspect.getsource`` finds classes defined in cells;
- an interrupt at a ``pdb`` prompt ends the cell, as under IPython (pdb alone asks again),
  and pdb never steps into the kernel's frames (:mod:`fastkernel.interpreter.pdbsupport`);
- ``''`` is first on ``sys.path``, as under IPython: imports follow the working directory.
- what libraries check to find a notebook kernel is answered when a cell imports them
  (:mod:`fastkernel.interpreter.notebooklibs`, imported with the first of them).

Every change goes through :class:`Patches`, so it can be undone (tests install and remove
them around each test).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.importhooks import after_import, before_import
from fastkernel.interpreter.sources import CellSources

if TYPE_CHECKING:
    from types import ModuleType

    from fastkernel.interpreter.core import Interpreter

_MISSING = object()


class Patches:
    """Attributes replaced on modules and classes, restorable in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def restore(self) -> None:
        while self._saved:
            owner, name, old = self._saved.pop()
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)


class ExitCall:
    """``exit()`` and ``quit()`` in a cell: ask the frontend to end the session.

    As in IPython the cell carries on; the request travels as an ``ask_exit`` payload on the
    execute reply, on which jupyter console and qtconsole shut the kernel down and exit.
    """

    def __init__(self, ask_exit: Callable[[bool], None]) -> None:
        self._ask_exit = ask_exit

    def __repr__(self) -> str:
        return "Use exit() or quit() to end the kernel session."

    def __call__(self, keep_kernel: bool = False) -> None:
        self._ask_exit(bool(keep_kernel))


def _plain_pager(text: str, title: str = "") -> None:
    import pydoc

    sys.stdout.write(pydoc.plain(text))


class KernelHelp:
    """``help()``: pydoc's help, written as plain text to the current ``sys.stdout``."""

    def __repr__(self) -> str:
        return "Type help() for interactive help, or help(object) for help about object."

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import pydoc

        # pydoc caches a pager on first use and may pick a terminal one (less) when the
        # kernel was started from a terminal; a cell's output is never a terminal.
        pydoc.pager = _plain_pager
        return pydoc.help(*args, **kwargs)


def install_warnings_labels(patches: Patches, sources: CellSources) -> None:
    """Show ``Cell In[5], line 2: UserWarning: ...`` instead of ``<cell-7>:2: UserWarning: ...``."""
    import warnings

    original = warnings.formatwarning

    @functools.wraps(original)
    def formatwarning(
        message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
    ) -> str:
        text = original(message, category, filename, lineno, line)
        label = sources.labels.get(filename)
        if label is not None:
            text = text.replace(f"{filename}:{lineno}:", f"{label}, line {lineno}:", 1)
        return text

    patches.set(warnings, "formatwarning", formatwarning)


def install_inspect_classes(patches: Patches, sources: CellSources) -> None:
    """Let ``inspect.getfile`` (so ``getsource``) answer for classes defined in cells.

    For a class, inspect uses ``__file__`` of the class's module. When ``__main__`` has none
    (the kernel's namespace), the hook answers with the cell that defined the class; inspect's
    own code then finds the ``class`` statement in that cell's source.
    """
    import inspect

    original = inspect.getfile

    @functools.wraps(original)
    def getfile(obj: Any) -> str:
        if isinstance(obj, type) and getattr(obj, "__module__", None) == "__main__":
            main = sys.modules.get("__main__")
            if getattr(main, "__file__", None) is None:
                filename = sources.class_file(obj)
                if filename is not None:
                    return filename
        return original(obj)

    patches.set(inspect, "getfile", getfile)


def install_pdb_interrupts(patches: Patches, sources: CellSources) -> Callable[[], None]:
    """Adapt pdb to cells once it is imported (interpreter/pdbsupport.py): an interrupt at its
    prompt ends the cell, it never steps into the kernel's frames, and it names cells by their
    labels (``Cell In[n]``). Returns a function that cancels the adaptation if pdb was not
    imported yet.
    """
    from fastkernel.interpreter.importhooks import after_import
    from fastkernel.interpreter.pdbsupport import adapt_pdb

    return after_import("pdb", lambda module: adapt_pdb(patches, module.Pdb, sources.labels))


def install_cwd_on_path() -> Callable[[], None]:
    """Put ``''`` first on ``sys.path`` (as IPython does), so ``import mymodule`` finds it in the
    working directory, also after ``%cd``. Returns a function that takes it out again."""
    if "" in sys.path:
        return lambda: None
    sys.path.insert(0, "")

    def remove() -> None:
        if "" in sys.path:
            sys.path.remove("")

    return remove


def install_habits(patches: Patches, sources: CellSources) -> list[Callable[[], None]]:
    """IPython's: ``''`` on ``sys.path``, pdb adapted to cells. Returns cancel functions."""
    return [install_cwd_on_path(), install_pdb_interrupts(patches, sources)]


# The modules whose check of the kernel notebooklibs answers (docs/ipython.md), and when: just
# before the module runs, or right after.
NOTEBOOK_LIBRARIES = (
    ("rich.console", "after"),
    ("pandas.io.formats.console", "after"),
    ("plotly.io._renderers", "after"),
    ("tqdm.autonotebook", "before"),
)


def install_notebook_library_hooks(interpreter: Interpreter) -> list[Callable[[], None]]:
    """Import hooks that hand :data:`NOTEBOOK_LIBRARIES` to notebooklibs; return the cancels."""

    def adapt(module: ModuleType) -> None:
        from fastkernel.interpreter import notebooklibs

        notebooklibs.adapt(interpreter, module)

    def prepare(module: ModuleType) -> None:
        from fastkernel.interpreter import notebooklibs

        notebooklibs.prepare(interpreter, module)

    return [
        (before_import(name, prepare) if when == "before" else after_import(name, adapt))
        for name, when in NOTEBOOK_LIBRARIES
    ]
