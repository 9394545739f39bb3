"""The process-wide set-up of the running interpreter (``Interpreter.install_as_main``).

``sys.modules['__main__']`` becomes the interpreter's namespace (pickle, dataclasses, typing
and enum find what cells define); ``help()`` writes to the cell's stdout; warnings and
``inspect.getsource`` know cells; pdb is adapted to cells; multiprocessing's spawn method can
run cell functions; matplotlib's figures become cell outputs; the event loop is adopted when
asyncio is imported; what libraries check to find a notebook is answered. Every change is
recorded so that :meth:`ProcessHooks.uninstall` undoes it (tests, shutdown).
"""

from __future__ import annotations

import builtins
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastkernel.interpreter import running
from fastkernel.interpreter.hooks import (
    KernelHelp,
    install_habits,
    install_inspect_classes,
    install_notebook_library_hooks,
    install_warnings_labels,
)

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter


class ProcessHooks:
    """What :meth:`install` changed in the process, for :meth:`uninstall`."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.previous_main: types.ModuleType | None = None
        self.cancels: list[Callable[[], None]] = []

    def install(self) -> None:
        """Make the interpreter the process's (see the module docstring); it becomes
        :func:`running.current() <fastkernel.interpreter.running.current>`, which ``display()``,
        ``get_ipython()`` and matplotlib's figures go through."""
        interpreter, patches = self.interpreter, self.interpreter.patches
        self.previous_main = sys.modules.get("__main__")
        sys.modules["__main__"] = interpreter.module
        self.cancels += install_habits(patches, interpreter.sources)  # '' on sys.path, pdb
        running.set_current(interpreter)  # before the hooks below, which may run at once
        patches.set(builtins, "help", KernelHelp())
        from fastkernel.interpreter.display import display

        patches.set(builtins, "display", display)
        # A builtin too, as under IPython: libraries test for a notebook with a bare get_ipython().
        patches.set(builtins, "get_ipython", interpreter.shell.get_ipython)
        install_warnings_labels(patches, interpreter.sources)
        install_inspect_classes(patches, interpreter.sources)
        from fastkernel.interpreter import mpsupport

        self.cancels += mpsupport.install(patches)
        from fastkernel.interpreter import inlinefigures  # matplotlib figures as cell output

        self.cancels += inlinefigures.install(interpreter)
        self.cancels.append(interpreter.loop_host.adopt_when_imported())
        self.cancels += install_notebook_library_hooks(interpreter)  # what libraries check

    def uninstall(self) -> None:
        """Undo :meth:`install`."""
        interpreter = self.interpreter
        for cancel in self.cancels:
            cancel()
        self.cancels = []
        interpreter.patches.restore()
        if self.previous_main is not None and sys.modules.get("__main__") is interpreter.module:
            sys.modules["__main__"] = self.previous_main
        if running.current() is interpreter:
            running.set_current(None)
