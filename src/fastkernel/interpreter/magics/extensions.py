"""IPython extensions: %load_ext, %unload_ext, %reload_ext.

An extension is a module with ``load_ipython_extension(ip)`` (and, to be unloadable,
``unload_ipython_extension(ip)``); ``ip`` is fastkernel's ``get_ipython()`` shell. An extension
that asks the shell (or ``get_ipython().kernel``) for something it lacks fails with a UsageError
naming it.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from fastkernel.interpreter.magics import UsageError
from fastkernel.interpreter.magics.registry import Magics, line_magic

# IPython ships these under IPython.extensions; `%load_ext autoreload` finds them there.
IPYTHON_EXTENSIONS = frozenset({"autoreload", "storemagic"})


def _module_name(line: str, magic: str) -> str:
    name = line.strip()
    if not name or " " in name:
        raise UsageError(f"usage: %{magic} MODULE")
    return name


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name or name not in IPYTHON_EXTENSIONS:
            raise
        return importlib.import_module(f"IPython.extensions.{name}")


def _call(magics: Magics, name: str, module: ModuleType, hook: str) -> bool:
    """Call ``module.hook(shell)``; False if the module has no such function."""
    function: Any = getattr(module, hook, None)
    if function is None:
        return False
    shell = magics.interpreter.shell
    try:
        function(shell)
    except AttributeError as err:
        where = _part_of_shell(shell, err)
        if where is None:
            raise
        raise UsageError(
            f"The {name} extension needs {where}.{err.name}, which fastkernel does not have.\n{err}"
        ) from err
    return True


def _part_of_shell(shell: Any, err: AttributeError) -> str | None:
    """``get_ipython()`` or ``get_ipython().kernel`` if ``err`` says it lacks an attribute, else None."""
    owner = getattr(err, "obj", None)
    if owner is None:
        return None
    if owner is shell:
        return "get_ipython()"
    if owner is getattr(shell, "kernel", None):
        return "get_ipython().kernel"
    return None


@line_magic("load_ext")
def load_ext(magics: Magics, line: str) -> None:
    """``%load_ext MODULE``: import MODULE and call its ``load_ipython_extension(get_ipython())``."""
    name = _module_name(line, "load_ext")
    if name in magics.extensions:
        print(f"The {name} extension is already loaded. To reload it, use:\n  %reload_ext {name}")
        return
    module = _import(name)
    if not _call(magics, name, module, "load_ipython_extension"):
        raise UsageError(f"The {name} module is not an IPython extension (it has no load_ipython_extension).")
    magics.extensions.add(name)


@line_magic("unload_ext")
def unload_ext(magics: Magics, line: str) -> None:
    """``%unload_ext MODULE``: call its ``unload_ipython_extension(get_ipython())``."""
    name = _module_name(line, "unload_ext")
    module = sys.modules.get(name) or sys.modules.get(f"IPython.extensions.{name}")
    if name not in magics.extensions or module is None:
        print(f"The {name} extension is not loaded.")
        return
    if not _call(magics, name, module, "unload_ipython_extension"):
        print(f"The {name} extension doesn't define how to unload it.")
        return
    magics.extensions.discard(name)


@line_magic("reload_ext")
def reload_ext(magics: Magics, line: str) -> None:
    """``%reload_ext MODULE``: unload it, reload its module, load it again (or just load it)."""
    name = _module_name(line, "reload_ext")
    module = sys.modules.get(name) or sys.modules.get(f"IPython.extensions.{name}")
    if name not in magics.extensions or module is None:
        load_ext(magics, name)
        return
    _call(magics, name, module, "unload_ipython_extension")
    magics.extensions.discard(name)
    module = importlib.reload(module)
    _call(magics, name, module, "load_ipython_extension")
    magics.extensions.add(name)
