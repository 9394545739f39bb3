"""multiprocessing for cells, the child side: what a spawned child calls to rebuild cell code.

:mod:`fastkernel.interpreter.mpsupport` (the kernel side) sends functions and classes defined
in cells *by value*; each arrives as a call of a function of this module, which the child
imports while unpickling. So this module imports nothing of the kernel, and its public
functions are the pickle format: ``make_*`` build an object, ``set_*_state`` fill it in.

An exception while unpickling kills a Pool worker and loses its task: the parent would wait
forever. So nothing here raises. What cannot be rebuilt becomes a stand-in that raises a
clear error when the task uses it; that error travels back to the parent like any other.
"""

from __future__ import annotations

import marshal
import sys
import types
from typing import Any

_BROKEN = "__fastkernel_rebuild_error__"


def _main_dict() -> dict[str, Any]:
    return sys.modules["__main__"].__dict__


def _rebuild_message(
    kind: str, name: str, err: BaseException, origin: str = "defined in a notebook cell"
) -> str:
    problem = f"{type(err).__name__}: {err}"
    return f"{kind} {name!r}, {origin}, could not be rebuilt in this spawned process: {problem}"


def _broken_function(name: str, message: str) -> types.FunctionType:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(message)

    broken.__name__ = broken.__qualname__ = name
    setattr(broken, _BROKEN, message)
    return broken  # type: ignore[return-value]


class _BrokenClass:
    """Stand-in for a class that could not be rebuilt: unpickles, then fails when used."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            return object.__getattribute__(self, name)  # what pickle needs to restore the object
        raise RuntimeError(getattr(type(self), _BROKEN))


def make_function(code_bytes: bytes, name: str, n_free: int, home: str | None) -> types.FunctionType:
    """A function without its state; its globals are ``__main__``'s or those of module ``home``."""
    try:
        code = marshal.loads(code_bytes)
        closure = tuple(types.CellType() for _ in range(n_free)) or None
        if home is None:
            namespace = _main_dict()
        else:
            import importlib

            namespace = importlib.import_module(home).__dict__
        return types.FunctionType(code, namespace, name, None, closure)
    except Exception as err:
        return _broken_function(name, _rebuild_message("function", name, err))


def set_function_state(func: types.FunctionType, state: dict[str, Any]) -> None:
    """Fill in what :func:`make_function` left out: referenced globals, defaults, closure, names."""
    if hasattr(func, _BROKEN):
        return
    try:
        func.__globals__.update(state["globals"])
        func.__defaults__ = state["defaults"]
        func.__kwdefaults__ = state["kwdefaults"]
        for cell, (filled, value) in zip(func.__closure__ or (), state["closure"], strict=False):
            if filled:
                cell.cell_contents = value
        func.__qualname__ = state["qualname"]
        func.__module__ = state["module"]
        func.__doc__ = state["doc"]
        func.__annotations__ = state["annotations"]
        func.__dict__.update(state["dict"])
    except Exception as err:  # never raise while unpickling (see the module docstring)
        print(_rebuild_message("function", func.__name__, err), file=sys.stderr)
    _bind(func)


def make_class(metaclass: type, name: str, bases: tuple[Any, ...], namespace: dict[str, Any]) -> type:
    """The class statement again: ``bases`` as written (``Generic[T]``), an empty body."""
    try:
        return types.new_class(name, bases, {"metaclass": metaclass}, lambda ns: ns.update(namespace))
    except Exception as err:
        message = _rebuild_message("class", name, err)
        return type(name, (_BrokenClass,), {**namespace, _BROKEN: message})


def set_class_state(cls: type, attrs: dict[str, Any]) -> None:
    """Set the class body's attributes on a class from :func:`make_class` (``__set_name__`` too)."""
    if _BROKEN in cls.__dict__:
        return
    for name, value in attrs.items():
        try:
            setattr(cls, name, value)
            set_name = getattr(type(value), "__set_name__", None)
            if set_name is not None:  # what the class statement would have done
                set_name(value, cls, name)
        except Exception as err:  # a missing attribute fails when used, not here
            print(_rebuild_message("class attribute", f"{cls.__qualname__}.{name}", err), file=sys.stderr)
    _bind(cls)


def make_typevar(name: str, constraints: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """A ``TypeVar`` of a cell, also bound in ``__main__`` unless a name is already there."""
    import typing

    typevar = typing.TypeVar(name, *constraints, **options)  # type: ignore[misc]
    typevar.__module__ = "__main__"
    _main_dict().setdefault(name, typevar)
    return typevar


def make_mappingproxy(mapping: dict[str, Any]) -> types.MappingProxyType[str, Any]:
    """A read-only view of ``mapping`` (pickle cannot send a ``mappingproxy`` by itself)."""
    return types.MappingProxyType(mapping)


class _BrokenModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(self.__dict__[_BROKEN])


def import_module(name: str) -> types.ModuleType:
    """A module a cell function uses, imported by name; a stand-in if it cannot be."""
    import importlib

    try:
        return importlib.import_module(name)
    except Exception as err:
        module = _BrokenModule(name)
        message = _rebuild_message("module", name, err, "used by a function from a notebook cell")
        setattr(module, _BROKEN, message)
        return module


def _bind(obj: Any) -> None:
    """Make ``__main__.<name>`` the rebuilt object, so the child can pickle it back by name."""
    qualname = getattr(obj, "__qualname__", "")
    if qualname and "." not in qualname and "<" not in qualname:
        _main_dict()[qualname] = obj
