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

:func:`find` follows the class's MRO as IPython does: at each class, a printer for it, then
its ``_repr_pretty_``, then its own ``__repr__``. :func:`quick_text` gives the text of the
common results (``repr()``, short containers of scalars) without building a layout.
"""

from __future__ import annotations

import collections
import contextlib
import os
import types
from collections.abc import Callable
from typing import Any

from fastkernel.interpreter.formatters import SCALARS
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


def sorted_for_display(items: Any) -> list[Any]:
    """Sorted if the items can be; else sorted by their str() (mixed types, as IPython does); else as
    they are. Never a half-sorted list: ``list.sort`` may leave one when a comparison fails."""
    items = list(items)
    for key in (None, str):
        try:
            return sorted(items, key=key)
        except Exception:  # an item that cannot be compared, or whose str() raises
            continue
    return items


def _set(start: str, end: str, empty: str) -> BuiltinPrinter:
    def write(obj: Any, p: Printer, cycle: bool) -> None:
        if cycle:
            p.text(f"{start}...{end}")
            return
        if not obj:
            p.text(empty)
            return
        _items(obj, p, start, end, sorted_for_display(obj))

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
    p.text(type_name(obj))


def type_name(cls: Any) -> str:
    """``module.QualName`` (no module for builtins), as IPython writes a class."""
    name = getattr(cls, "__qualname__", None)
    if not isinstance(name, str):
        name = getattr(cls, "__name__", "<unknown type>")
    module = getattr(cls, "__module__", None)
    return str(name) if module in BUILTIN_MODULES else f"{module}.{name}"


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
_REPR = SCALARS | {range, slice, types.MethodType}


def _repr_printer(obj: Any, p: Printer, cycle: bool) -> None:
    write_repr(obj, p)


def find(cls: Any) -> BuiltinPrinter:
    """How instances of ``cls`` are written, along its MRO as IPython looks: at each class, a
    printer for it, then its ``_repr_pretty_``, then its own ``__repr__``."""
    for klass in getattr(cls, "__mro__", (cls,)):
        if klass in _REPR:
            return _repr_printer
        printer = PRINTERS.get(klass)
        if printer is not None:
            return printer
        method = vars(klass).get("_repr_pretty_")
        if method is not None and callable(method):
            return method  # type: ignore[no-any-return]
        if klass is not object and "__repr__" in vars(klass) and callable(getattr(klass, "__repr__", None)):
            return _repr_printer
    return _default


def write(obj: Any, p: Printer, cycle: bool) -> None:
    """Write ``obj`` as IPython does when no printer is registered for it."""
    find(getattr(obj, "__class__", None) or type(obj))(obj, p, cycle)


_OPEN: dict[type, tuple[str, str]] = {list: ("[", "]"), tuple: ("(", ")"), dict: ("{", "}")}


def quick_text(obj: Any, max_width: int, max_seq_length: int) -> str | None:
    """The text :func:`write` would give, without a printer where that is cheap; else None.

    Objects written with ``repr()``, and lists, tuples and dicts of scalars (one item a line
    when they do not fit in ``max_width``), the common results.
    """
    cls = type(obj)
    if cls in _OPEN:
        if len(obj) > max_seq_length:
            return None
        items = [*obj, *obj.values()] if cls is dict else obj
        if not all(type(item) in SCALARS for item in items):
            return None
        text = repr(obj)
        if len(text) <= max_width or len(obj) < 2:
            return text
        start, end = _OPEN[cls]
        parts = [f"{k!r}: {v!r}" for k, v in obj.items()] if cls is dict else map(repr, obj)
        return start + ",\n ".join(parts) + end
    cls = getattr(obj, "__class__", None) or cls
    printer = find(cls)
    if printer is _repr_printer:
        return repr(obj)
    if printer is _default and getattr(cls, "__repr__", None) is object.__repr__:
        return f"<{type_name(cls)} at 0x{id(obj):x}>"
    return None
