"""IPython compatibility without IPython: ``get_ipython()`` and ``IPython.display`` in fastkernel.

Code written for ipykernel imports ``get_ipython`` and the display functions from IPython
(ipywidgets does both). fastkernel never imports IPython itself; when user code first imports
the IPython modules below, an import hook (:func:`~fastkernel.interpreter.importhooks.after_import`)
adapts each one right after it has run and before any importer copies its names:

- ``IPython.core.getipython``: ``get_ipython()`` returns the kernel's
  :class:`~fastkernel.interpreter.shell.FastKernelShell`;
- ``IPython.core.display_functions``: ``display``, ``update_display``, ``clear_output``,
  ``publish_display_data`` and ``DisplayHandle`` become fastkernel's, so ``IPython.display``
  (which copies them) publishes through the kernel, with IPython's display formatter's rules
  (:mod:`fastkernel.interpreter.formatting`);
- ``IPython.core.interactiveshell``: ``InteractiveShell.initialized()`` is true and
  ``InteractiveShell.instance()`` returns the fastkernel shell, while no real IPython shell
  exists (ipywidgets' ``Output.append_display_data`` formats through it);
- ``IPython.core.magic``: a ``Magics`` class made with the fastkernel shell does not take it
  as its traitlets parent (it is no ``Configurable``), so extensions' magics
  (``%load_ext autoreload``) can be registered with ``get_ipython().register_magics``.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter import display as display_api
from fastkernel.interpreter.importhooks import after_import
from fastkernel.interpreter.running import current

if TYPE_CHECKING:
    from fastkernel.interpreter.shell import FastKernelShell
    from fastkernel.kernel import Kernel

_hooked = False


class KernelLink:
    """``get_ipython().kernel``: comms and the current request, the parts libraries use."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    def __repr__(self) -> str:
        return "<fastkernel get_ipython().kernel>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        have = ", ".join(n for n in dir(type(self)) if not n.startswith("__"))
        message = f"fastkernel's get_ipython().kernel has no attribute {name!r}; it has: {have}"
        raise AttributeError(message, name=name, obj=self)

    @property
    def comm_manager(self) -> Any:
        import comm  # the first import installs fastkernel.comms (see Kernel.__init__)

        return comm.get_comm_manager()

    def get_parent(self, channel: str | None = None) -> dict[str, Any]:
        return self._kernel.current_request() or {}  # {} before the first request

    def list_subshells(self) -> list[str]:
        """The ids of the kernel's subshells (JEP 91), as ``%subshell`` shows them."""
        return self._kernel.outlet.list_subshells()

    @property
    def _parent_header(self) -> dict[str, Any]:  # ipykernel < 6 kept the request under this name
        return self._kernel.current_request() or {}  # {} before the first request

    @property
    def execution_count(self) -> int:
        return self._kernel.execution_count

    @property
    def shell(self) -> FastKernelShell:
        return self._kernel.interpreter.shell


def install(kernel: Kernel) -> None:
    """Give ``kernel``'s shell its kernel link and adapt IPython when user code imports it."""
    global _hooked
    kernel.interpreter.shell.kernel = KernelLink(kernel)
    if _hooked:  # one set of hooks per process; they use the running interpreter's shell
        return
    _hooked = True
    after_import("IPython.core.getipython", _adapt_getipython)
    after_import("IPython.core.display_functions", _adapt_display_functions)
    after_import("IPython.core.interactiveshell", _adapt_interactiveshell)
    after_import("IPython.core.magic", _adapt_magic)


def get_ipython() -> FastKernelShell | None:
    """``IPython.get_ipython`` in a fastkernel kernel: its shell while it serves, else None.

    "Serves" means the running interpreter (:func:`~fastkernel.interpreter.running.current`)
    has its namespace as the process's ``__main__``; a Kernel object built in some other
    program (the test suite) leaves IPython as it is.
    """
    interpreter = current()
    if interpreter is None or sys.modules.get("__main__") is not interpreter.module:
        return None
    return interpreter.shell


def publish_display_data(
    data: dict[str, Any], metadata: dict[str, Any] | None = None, *, transient: Any = None, **kwargs: Any
) -> None:
    """``IPython.display.publish_display_data``: publish a ready MIME bundle."""
    update = bool(kwargs.get("update", False))
    display_api.publish_bundle(current(), dict(data), metadata, transient, update)


def _adapt_getipython(module: ModuleType) -> None:
    module.get_ipython = get_ipython  # type: ignore[attr-defined]


def _adapt_display_functions(module: ModuleType) -> None:
    module.display = display_api.display  # type: ignore[attr-defined]
    module.update_display = display_api.update_display  # type: ignore[attr-defined]
    module.clear_output = display_api.clear_output  # type: ignore[attr-defined]
    module.publish_display_data = publish_display_data  # type: ignore[attr-defined]
    module.DisplayHandle = display_api.DisplayHandle  # type: ignore[attr-defined]


def _adapt_interactiveshell(module: ModuleType) -> None:
    shell_class = module.InteractiveShell
    make_instance = shell_class.instance.__func__
    is_initialized = shell_class.initialized.__func__

    # Only InteractiveShell itself, only while no real IPython shell exists: an embedded IPython
    # (TerminalInteractiveShell.instance()) is created and served as usual.
    def instance(cls: Any, *args: Any, **kwargs: Any) -> Any:
        shell = get_ipython()
        if cls is shell_class and shell is not None and getattr(cls, "_instance", None) is None:
            return shell
        return make_instance(cls, *args, **kwargs)

    def initialized(cls: Any) -> bool:
        return bool(cls is shell_class and get_ipython() is not None) or bool(is_initialized(cls))

    shell_class.instance = classmethod(instance)
    shell_class.initialized = classmethod(initialized)


def _adapt_magic(module: ModuleType) -> None:
    """IPython ``Magics`` made for fastkernel's shell: not its traitlets parent (it is no Configurable)."""
    magics_class = module.Magics
    init = magics_class.__init__

    def __init__(self: Any, shell: Any = None, **kwargs: Any) -> None:
        if shell is not None and shell is get_ipython():
            kwargs.setdefault("parent", None)
        init(self, shell, **kwargs)

    magics_class.__init__ = __init__
