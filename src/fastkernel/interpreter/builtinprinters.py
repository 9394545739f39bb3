"""How the text/plain formatter writes objects that have no printer of their own.

IPython's text/plain for common objects is not ``repr()``; notebooks show, and fastkernel
shows the same:

- lists, tuples, dicts and sets item by item, one item a line when they do not fit on one
  (a set sorted when its items can be), at most ``max_seq_length`` items then ``...``;
- classes as ``module.QualName`` (``int``, ``__main__.Foo``);
- functions as ``<function module.name(signature)>``;
- exceptions as ``module.Name(args)`` (no module for builtins);
- objects whose class keeps ``object.__repr__`` as ``<module.QualName at 0x...>``;
- ``OrderedDict``, ``defaultdict``, ``Counter``, ``deque``, ``os.environ`` and mapping proxies
  with their contents laid out like a dict or a list;
- everything else as ``repr()``, its lines kept at the indentation they start at.

:func:`write` follows the class's MRO as IPython does: at each class, a printer for it, then
its ``_repr_pretty_``, then its own ``__repr__``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import types
from collections.abc import Callable
from typing import Any

from fastkernel.interpreter.pretty import Printer

BuiltinPrinter = Callable[[Any, Printer, bool], None]
BUILTIN_MODULES = (None, "builtins", "__builtin__", "exceptions")


def _items(obj: Any, p: Printer, start: str, end: str, items: Any) -> None:
    with p.group(len(start), start, end):
        for index, item in p._enumerate(items):
            if index:
                p.text(",")
                p.breakable()
            p.pretty(item)


def _sequence(start: str, end: str) -> BuiltinPrinter:
    def write(obj: Any, p: Printer, cycle: bool) -> None:
        if cycle:
            p.text(f"{start}...{end}")
            return
        with p.group(len(start), start, end):
            for index, item in p._enumerate(obj):
                if index:
                    p.text(",")
                    p.breakable()
                p.pretty(item)
            if isinstance(obj, tuple) and len(obj) == 1:
                p.text(",")

    return write


def _set(start: str, end: str, empty: str) -> BuiltinPrinter:
    def write(obj: Any, p: Printer, cycle: bool) -> None:
        if cycle:
            p.text(f"{start}...{end}")
            return
        if not obj:
            p.text(empty)
            return
        items = list(obj)
        with contextlib.suppress(Exception):  # unorderable items: in the set's own order
            items.sort()
        _items(obj, p, start, end, items)

    return write


def _mapping(start: str, end: str) -> BuiltinPrinter:
    def write(obj: Any, p: Printer, cycle: bool) -> None:
        if cycle:
            p.text("{...}")
            return
        with p.group(len(start), start, end):
            for index, key in p._enumerate(obj.keys()):
                if index:
                    p.text(",")
                    p.breakable()
                p.pretty(key)
                p.text(": ")
                p.pretty(obj[key])

    return write


def _wrapped(name: str, contents: Callable[[Any], Any]) -> BuiltinPrinter:
    """``name(<contents>)``: the contents pretty-printed, ``name()`` when empty."""

    def write(obj: Any, p: Printer, cycle: bool) -> None:
        if cycle:
            p.text(f"{name}(...)")
        elif not obj:
            p.text(f"{name}()")
        else:
            with p.group(len(name) + 1, f"{name}(", ")"):
                p.pretty(contents(obj))

    return write


def _defaultdict(obj: Any, p: Printer, cycle: bool) -> None:
    with p.group(len("defaultdict("), "defaultdict(", ")"):
        if cycle:
            p.text("...")
            return
        p.pretty(obj.default_factory)
        p.text(",")
        p.breakable()
        _mapping("{", "}")(obj, p, cycle)


def _type(obj: Any, p: Printer, cycle: bool) -> None:
    overrides = [m for m in type(obj).__mro__ if "__repr__" in vars(m)][:1]
    if overrides != [type]:  # a metaclass with a repr of its own
        write_repr(obj, p)
        return
    name = getattr(obj, "__qualname__", None)
    if not isinstance(name, str):
        name = getattr(obj, "__name__", "<unknown type>")
    module = getattr(obj, "__module__", None)
    p.text(name if module in BUILTIN_MODULES else f"{module}.{name}")


def _function(obj: Any, p: Printer, cycle: bool) -> None:
    import inspect

    name = getattr(obj, "__qualname__", None) or obj.__name__
    module = getattr(obj, "__module__", None)
    if module not in BUILTIN_MODULES:
        name = f"{module}.{name}"
    with contextlib.suppress(ValueError, TypeError):
        name += str(inspect.signature(obj))
    p.text(f"<function {name}>")


def _exception(obj: Any, p: Printer, cycle: bool) -> None:
    cls = type(obj)
    name = getattr(cls, "__qualname__", cls.__name__)
    if cls.__module__ not in BUILTIN_MODULES:
        name = f"{cls.__module__}.{name}"
    _items(obj, p, f"{name}(", ")", getattr(obj, "args", ()))


def write_repr(obj: Any, p: Printer) -> None:
    """``repr(obj)``; a line break in it keeps the printer's indentation."""
    for index, line in enumerate(repr(obj).splitlines() or [""]):
        if index:
            p.break_()
        p.text(line)


def _default(obj: Any, p: Printer, cycle: bool) -> None:
    cls = getattr(obj, "__class__", None) or type(obj)
    if getattr(cls, "__repr__", None) is not object.__repr__:
        write_repr(obj, p)
        return
    with p.group(1, "<", ">"):
        _type(cls, p, cycle)
        p.text(f" at 0x{id(obj):x}")
        if cycle:
            p.text(" ...")


PRINTERS: dict[Any, BuiltinPrinter] = {
    tuple: _sequence("(", ")"),
    list: _sequence("[", "]"),
    dict: _mapping("{", "}"),
    set: _set("{", "}", "set()"),
    frozenset: _set("frozenset({", "})", "frozenset()"),
    type: _type,
    types.FunctionType: _function,
    types.BuiltinFunctionType: _function,
    BaseException: _exception,
    types.MappingProxyType: _mapping("mappingproxy({", "})"),
    collections.OrderedDict: _wrapped("OrderedDict", lambda d: list(d.items())),
    collections.Counter: _wrapped("Counter", lambda c: dict(c.most_common())),
    collections.deque: _wrapped("deque", list),
    collections.defaultdict: _defaultdict,
}
if type(os.environ) is not dict:
    PRINTERS[type(os.environ)] = _mapping("environ{", "}")
# repr() as it is: checked before a base class's printer would apply.
_REPR = frozenset({int, float, complex, str, bytes, bool, type(None), range, slice, types.MethodType})


def write(obj: Any, p: Printer, cycle: bool) -> None:
    """Write ``obj`` along its class's MRO: a builtin printer, ``_repr_pretty_``, its ``__repr__``."""
    cls = getattr(obj, "__class__", None) or type(obj)
    for klass in getattr(cls, "__mro__", (cls,)):
        if klass in _REPR:
            write_repr(obj, p)
            return
        printer = PRINTERS.get(klass)
        if printer is not None:
            printer(obj, p, cycle)
            return
        method = vars(klass).get("_repr_pretty_")
        if method is not None and callable(method):
            method(obj, p, cycle)
            return
        if klass is not object and "__repr__" in vars(klass) and callable(getattr(klass, "__repr__", None)):
            write_repr(obj, p)
            return
    _default(obj, p, cycle)
