"""multiprocessing with the ``spawn`` and ``forkserver`` start methods, for code defined in cells.

The problem: pickle sends functions and classes *by reference* (``__main__.square``). A
spawned child is a fresh interpreter that rebuilds ``__main__`` from the parent's script,
but the kernel's ``__main__`` exists only in the kernel process. The child cannot find
``square``: a ``Process`` dies at start, and a ``Pool`` worker dies taking its task with it,
so ``pool.map`` waits forever (ipykernel and xeus-python hang there).

What fastkernel does: while multiprocessing pickles something for a spawned or forkserver
child, functions and classes defined in cells are sent *by value* (code, referenced
globals, defaults, closure; a class's attributes), modules by name. The child rebuilds them
in its own ``__main__``, so results that refer to them come back by reference as usual.
This covers ``Process(target=...)`` arguments, ``Pool`` tasks and initializers, and
``ProcessPoolExecutor`` (and any ``ctx.Queue`` of a spawn context). The ``fork`` method
is left alone: a forked child already has the kernel's ``__main__``.

A function takes the globals it uses along as they are when the task is sent: a child's
assignment to a global does not come back (as with ``fork``). What cannot be sent (an Enum
class from a cell, a global that pickle cannot handle, such as an open file) fails in the
parent, at once, with a :class:`SpawnPicklingError` that says why. What the child cannot
rebuild (a base class whose ``__init_subclass__`` refuses, say) becomes a stand-in there that
raises when the task uses it, so the error comes back as the task's result instead of a dead
worker.

This module is the kernel (parent) side: it decides what goes by value and how. The
functions that rebuild it in the child are in :mod:`fastkernel.interpreter.mpchild`.
"""

from __future__ import annotations

import marshal
import sys
import types
from typing import Any

from fastkernel.interpreter import mpchild

_MODULE_DUNDERS = frozenset(
    {"__name__", "__builtins__", "__doc__", "__file__", "__spec__", "__loader__", "__package__"}
)
_GLOBAL_OPS = frozenset(
    {"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME", "DELETE_NAME"}
)
_ALLOWED_METACLASSES = ("type", "ABCMeta")
# Sentinels that dataclasses compares by identity; sent by name so `is` still holds.
_DATACLASS_SENTINELS = (
    "MISSING",
    "KW_ONLY",
    "_HAS_DEFAULT_FACTORY",
    "_FIELD",
    "_FIELD_CLASSVAR",
    "_FIELD_INITVAR",
)
FIX_HINT = (
    "fastkernel sends functions and classes defined in cells to spawned processes by value, so "
    "everything they use must be picklable. Move the definition into a .py module and import it, "
    "or use the 'fork' start method."
)


class SpawnPicklingError(Exception):
    """Something a spawned child would need cannot be sent to it (raised in the parent).

    Not a subclass of :class:`pickle.PicklingError`, so that the error reaches the user
    instead of being retried or wrapped by code that handles pickling errors.
    """


class _State:
    """Which pickling is destined for a child that cannot import the kernel's ``__main__``."""

    def __init__(self) -> None:
        import threading
        import weakref

        self.local = threading.local()
        self.feeder_threads: weakref.WeakSet[Any] = weakref.WeakSet()
        self.current_thread = threading.current_thread

    def sending(self) -> bool:
        if getattr(self.local, "depth", 0):
            return True
        context = sys.modules.get("multiprocessing.context")
        if context is not None and context.get_spawning_popen() is not None:
            return True  # Process.start() of a spawn or forkserver process
        return bool(self.feeder_threads) and self.current_thread() in self.feeder_threads


_state: _State | None = None


def _main_is_unimportable() -> bool:
    """Whether a spawned child cannot rebuild ``__main__`` (no script file, no module name)."""
    main = sys.modules.get("__main__")
    return (
        main is not None and not getattr(main, "__file__", None) and getattr(main, "__spec__", None) is None
    )


def _global_names(code: types.CodeType) -> set[str]:
    import dis

    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names - _MODULE_DUNDERS


def _home_module(func: types.FunctionType) -> str:
    """The importable module whose namespace is ``func.__globals__``."""
    name = func.__globals__.get("__name__")
    module = sys.modules.get(name) if isinstance(name, str) else None
    spec = getattr(module, "__spec__", None)
    if module is None or module.__dict__ is not func.__globals__ or spec is None or spec.name != name:
        raise SpawnPicklingError(
            f"cannot send function {func.__qualname__!r} to a spawned process: it claims to come "
            f"from __main__, but its globals belong to no importable module. " + FIX_HINT
        )
    return name


def _reduce_function(func: types.FunctionType, main: types.ModuleType) -> tuple[Any, ...]:
    """By value. A function of the cell namespace takes the globals it uses along; a wrapper
    that only claims ``__module__ == '__main__'`` (functools.wraps of a cell function, as
    dataclasses' ``__repr__``) is rebuilt on its own module's globals in the child."""
    code = func.__code__
    home: str | None = None
    referenced: dict[str, Any] = {}
    if func.__globals__ is main.__dict__:
        referenced = {n: func.__globals__[n] for n in _global_names(code) if n in func.__globals__}
    else:
        home = _home_module(func)
    closure = []
    for cell in func.__closure__ or ():
        try:
            closure.append((True, cell.cell_contents))
        except ValueError:  # a free variable that is not assigned yet
            closure.append((False, None))
    state = {
        "globals": referenced,
        "defaults": func.__defaults__,
        "kwdefaults": func.__kwdefaults__,
        "closure": closure,
        "qualname": func.__qualname__,
        "module": func.__module__,
        "doc": func.__doc__,
        "annotations": func.__annotations__,
        "dict": func.__dict__,
    }
    args = (marshal.dumps(code), func.__name__, len(code.co_freevars), home)
    return (mpchild.make_function, args, state, None, None, mpchild.set_function_state)


def _slot_names(cls: type) -> set[str]:
    slots = cls.__dict__.get("__slots__", ())
    return {slots} if isinstance(slots, str) else set(slots)


def _reduce_class(cls: type) -> tuple[Any, ...]:
    metaclass = type(cls)
    if metaclass.__name__ not in _ALLOWED_METACLASSES or metaclass.__module__ not in ("builtins", "abc"):
        raise SpawnPicklingError(
            f"cannot send class {cls.__qualname__!r}, defined in a cell, to a spawned process: its "
            f"metaclass {metaclass.__module__}.{metaclass.__qualname__} cannot be rebuilt there "
            "(only plain classes and ABCs can; Enum classes cannot). " + FIX_HINT
        )
    skip = {"__dict__", "__weakref__", "_abc_impl", "__module__", "__qualname__", "__orig_bases__"}
    attrs = {k: v for k, v in cls.__dict__.items() if k not in skip | _slot_names(cls)}
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    if "__slots__" in cls.__dict__:
        namespace["__slots__"] = cls.__dict__["__slots__"]
    bases = cls.__dict__.get("__orig_bases__", cls.__bases__)  # Generic[T], as written
    args = (metaclass, cls.__name__, bases, namespace)
    return (mpchild.make_class, args, attrs, None, None, mpchild.set_class_state)


def _reduce_typevar(typevar: Any) -> tuple[Any, ...]:
    options = {
        "bound": typevar.__bound__,
        "covariant": typevar.__covariant__,
        "contravariant": typevar.__contravariant__,
    }
    return (mpchild.make_typevar, (typevar.__name__, typevar.__constraints__, options))


def _reduce_by_name_in_main(obj: Any) -> tuple[Any, ...] | None:
    """Objects whose ``__reduce__`` names a ``__main__`` global (pickled by reference)."""
    import typing

    if isinstance(obj, typing.TypeVar):
        return _reduce_typevar(obj)
    cls = type(obj)
    if cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__:
        return None  # an ordinary instance: pickled by value, its class goes through here too
    try:
        reduced = obj.__reduce_ex__(4)
    except Exception:
        return None  # pickle itself will report it
    if isinstance(reduced, str):
        raise SpawnPicklingError(
            f"cannot send {obj!r} to a spawned process: it is pickled by reference to __main__."
            f"{reduced}, which exists only in the kernel. " + FIX_HINT
        )
    return None


def _dataclass_sentinel(obj: Any) -> tuple[Any, ...] | None:
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is None or type(obj).__module__ != "dataclasses":
        return None
    for name in _DATACLASS_SENTINELS:
        if getattr(dataclasses, name, None) is obj:
            return (getattr, (dataclasses, name))
    return None


def _reduce_module(module: types.ModuleType) -> tuple[Any, ...]:
    spec = getattr(module, "__spec__", None)
    if spec is None or spec.name != module.__name__ or module is sys.modules.get("__main__"):
        raise SpawnPicklingError(
            f"cannot send module {module.__name__!r} to a spawned process: it cannot be imported "
            "there by name. " + FIX_HINT
        )
    return (mpchild.import_module, (module.__name__,))


def _reduce_descriptor(obj: Any) -> tuple[Any, ...] | None:
    """Class attributes that pickle cannot handle by itself."""
    import functools

    kind = type(obj)
    if kind in (classmethod, staticmethod):
        return (kind, (obj.__func__,))
    if kind is property:
        return (property, (obj.fget, obj.fset, obj.fdel, obj.__doc__))
    if kind is functools.cached_property:  # its lock (3.11) cannot be pickled
        return (functools.cached_property, (obj.func,))
    if kind is types.MappingProxyType:
        return (mpchild.make_mappingproxy, (dict(obj),))
    return None


def _module_name(obj: Any) -> Any:
    try:
        return getattr(obj, "__module__", None)
    except Exception:  # a proxy's __getattr__ may raise anything
        return None


def reducer_override(obj: Any) -> Any:
    """Reduce ``obj`` for a spawned child; ``NotImplemented`` means pickle as usual."""
    if _state is None or not _state.sending() or not _main_is_unimportable():
        return NotImplemented
    main = sys.modules["__main__"]
    if isinstance(obj, types.FunctionType):
        # By reference, a function is found by its __module__: one that says __main__ could
        # not be found in the child, and a Pool would wait for it forever.
        if obj.__globals__ is main.__dict__ or obj.__module__ == "__main__":
            return _reduce_function(obj, main)
        return NotImplemented
    if isinstance(obj, type):
        return _reduce_class(obj) if obj.__module__ == "__main__" else NotImplemented
    if isinstance(obj, types.ModuleType):
        return _reduce_module(obj)
    found = _reduce_descriptor(obj)
    if found is None:
        found = _dataclass_sentinel(obj)
    if found is None and _module_name(obj) == "__main__":
        found = _reduce_by_name_in_main(obj)
    return NotImplemented if found is None else found


# -- installing ------------------------------------------------------------------------------


def _explain(err: BaseException, what: str) -> BaseException:
    if isinstance(err, SpawnPicklingError):
        return err
    return SpawnPicklingError(f"cannot send {what} to a spawned process: {err}. {FIX_HINT}")


def _pickler_reducer_override(self: Any, obj: Any) -> Any:
    return reducer_override(obj)


def _sends_by_value(ctx: Any) -> bool:
    method = ctx.get_start_method(allow_none=True) if ctx is not None else None
    return method in ("spawn", "forkserver")


def _wrap_send(state: _State, send: Any, what: str) -> Any:
    import pickle

    def send_by_value(obj: Any) -> Any:
        state.local.depth = getattr(state.local, "depth", 0) + 1
        try:
            return send(obj)
        except (pickle.PicklingError, TypeError, AttributeError, SpawnPicklingError) as err:
            raise _explain(err, what) from err
        finally:
            state.local.depth -= 1

    return send_by_value


def _patch_reduction(patches: Any, module: types.ModuleType) -> None:
    patches.set(module.ForkingPickler, "reducer_override", _pickler_reducer_override)


def _patch_popen(patches: Any, state: _State, module: types.ModuleType) -> None:
    """Process.start(): the same pickling, with an error that says what to do."""
    original = module.Popen._launch

    def _launch(self: Any, process_obj: Any) -> Any:
        return _wrap_send(state, lambda obj: original(self, obj), f"process {process_obj.name!r}")(
            process_obj
        )

    patches.set(module.Popen, "_launch", _launch)


def _patch_pool(patches: Any, state: _State, module: types.ModuleType) -> None:
    """Pool tasks are pickled by the pool's task thread through ``_quick_put``."""
    original = module.Pool._setup_queues

    def _setup_queues(self: Any) -> None:
        original(self)
        if _sends_by_value(getattr(self, "_ctx", None)):
            self._quick_put = _wrap_send(state, self._quick_put, "a task of this Pool")

    patches.set(module.Pool, "_setup_queues", _setup_queues)


def _patch_queues(patches: Any, state: _State, module: types.ModuleType) -> None:
    """A spawn context's Queue pickles in its feeder thread (ProcessPoolExecutor's call queue)."""
    original_init = module.Queue.__init__
    original_start = module.Queue._start_thread

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._fastkernel_by_value = _sends_by_value(kwargs.get("ctx"))

    def _start_thread(self: Any) -> None:
        original_start(self)
        if getattr(self, "_fastkernel_by_value", False):
            state.feeder_threads.add(self._thread)

    patches.set(module.Queue, "__init__", __init__)
    patches.set(module.Queue, "_start_thread", _start_thread)


def install(patches: Any) -> list[Any]:
    """Adapt multiprocessing when (or if already) imported; return cancel functions."""
    global _state
    from fastkernel.interpreter.importhooks import after_import

    state = _state = _state or _State()
    hooks = {
        "multiprocessing.reduction": lambda m: _patch_reduction(patches, m),
        "multiprocessing.popen_spawn_posix": lambda m: _patch_popen(patches, state, m),
        "multiprocessing.popen_forkserver": lambda m: _patch_popen(patches, state, m),
        "multiprocessing.pool": lambda m: _patch_pool(patches, state, m),
        "multiprocessing.queues": lambda m: _patch_queues(patches, state, m),
    }
    return [after_import(name, hook) for name, hook in hooks.items()]
