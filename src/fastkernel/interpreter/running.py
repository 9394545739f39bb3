"""The running interpreter: the one place where code without a kernel object finds it.

User code calls ``display()``, ``IPython.display.display`` or ``get_ipython()`` with nothing
that leads to the kernel; the matplotlib backend is loaded by matplotlib itself. They all ask
:func:`current`. :meth:`Interpreter.install_as_main
<fastkernel.interpreter.core.Interpreter.install_as_main>` sets it and ``uninstall`` clears
it; nothing else should. Everything else (the display publisher, the shell, the event
callbacks) is reached through the interpreter it returns, so a second interpreter (unit
tests) never shares state with the running one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter

_current: Interpreter | None = None


def current() -> Interpreter | None:
    """The interpreter installed as the process's ``__main__``, or None (no kernel running)."""
    return _current


def set_current(interpreter: Interpreter | None) -> None:
    """Make ``interpreter`` the running one (None: none is); for ``install_as_main``/``uninstall``."""
    global _current
    _current = interpreter
