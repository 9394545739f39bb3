"""One formatter per MIME type: ``get_ipython().display_formatter.formatters[mime]``.

Libraries register how their types look in a notebook through IPython's formatter objects:
``formatters['image/png'].for_type(cls, func)``, ``for_type_by_name(module, name, func)``,
``lookup(obj)``, ``pop(cls)``, ``type_printers``. These classes have IPython's calling
conventions (written for fastkernel, without IPython):

- a formatter first looks for a printer registered for the object's class (along its MRO;
  by ``(module, name)`` for classes registered by name, so registering imports nothing), then
  for the object's print method (``_repr_html_`` and so on);
- a printer or method returns the data, ``(data, metadata)``, or None for nothing; a method
  that raises ``NotImplementedError`` also gives nothing;
- the text/plain formatter calls printers as ``func(obj, p, cycle)`` and ``_repr_pretty_(p,
  cycle)`` with a pretty printer (:mod:`fastkernel.interpreter.pretty`);
- the mimebundle formatter calls ``_repr_mimebundle_(include=..., exclude=...)``;
- the ``_ipython_display_`` formatter says whether the object displayed itself.

Errors in a printer or method are reported on stderr and give nothing for that MIME type:
a broken ``_repr_html_`` never breaks the cell.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastkernel.interpreter.pretty import Printer

Printer_ = Any  # a registered printer: func(obj) (func(obj, p, cycle) for text/plain)
_MISSING = object()
# Types whose instances have none of the print methods: the formatters skip the attribute lookups.
SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None)})
PLAIN_TYPES = SCALARS | {list, tuple, dict, set, frozenset}


class FormatterWarning(UserWarning):
    """A formatter returned data of the wrong type for its MIME type (the data is dropped)."""


def get_real_method(obj: Any, name: str) -> Any:
    """``obj``'s method ``name``, or None: not for classes, nor for objects that claim every name."""
    try:
        if getattr(obj, "_ipython_canary_method_should_not_exist_", None) is not None:
            return None
        method = getattr(obj, name, None)
    except Exception:
        return None
    if isinstance(obj, type) and getattr(method, "__self__", None) is not obj:
        return None  # an unbound method of a class, not a classmethod
    return method if callable(method) else None


def report(obj: Any, what: str, err: BaseException, printer: bool = False) -> None:
    """A broken method or printer must not break the cell: say so on stderr and go on.

    ``what`` is the method's name, or with ``printer`` the MIME type a registered printer makes.
    """
    problem = f"{type(err).__name__}: {err}"
    name = type(obj).__name__
    line = f"{name}: could not make {what}: {problem}" if printer else f"{name}.{what} raised {problem}"
    print(line, file=sys.stderr)


def _type_key(cls: Any) -> tuple[Any, Any]:
    return getattr(cls, "__module__", None), getattr(cls, "__name__", None)


def _name_key(name: str) -> tuple[str, str]:
    module, _, qualname = name.rpartition(".")
    return module, qualname


class BaseFormatter:
    """Formats objects as one MIME type: registered printers first, then ``print_method``."""

    format_type = "text/plain"
    print_method = "__repr__"
    return_type: Any = str

    def __init__(self) -> None:
        self.enabled = True
        self.type_printers: dict[Any, Printer_] = {}
        self.deferred_printers: dict[tuple[Any, Any], Printer_] = {}
        self.singleton_printers: dict[int, Printer_] = {}

    def __repr__(self) -> str:
        return f"<fastkernel {type(self).__name__} for {self.format_type}>"

    def __call__(self, obj: Any) -> Any:
        if not self.enabled:
            return None
        printer = self.find(obj)
        if printer is not None:
            return self.call(obj, None, lambda: printer(obj))
        method = self.method(obj)
        return None if method is None else self.call(obj, self.print_method, method)

    def find(self, obj: Any) -> Printer_:
        """The printer registered for ``obj``, or None (:meth:`lookup` without the KeyError)."""
        if not (self.singleton_printers or self.type_printers or self.deferred_printers):
            return None
        try:
            return self.lookup(obj)
        except KeyError:
            return None

    def method(self, obj: Any) -> Any:
        """``obj``'s print method (bound), or None."""
        return None if type(obj) in PLAIN_TYPES else get_real_method(obj, self.print_method)

    def call(self, obj: Any, method: str | None, func: Callable[[], Any]) -> Any:
        """``func()``, checked; errors are reported (with the method's name, or as a printer's)."""
        try:
            return self.check(func(), obj)
        except NotImplementedError:
            return None
        except Exception as err:
            report(obj, method or self.format_type, err, printer=method is None)
            return None

    def check(self, value: Any, obj: Any) -> Any:
        """``value`` if it is data of this MIME type (or ``(data, metadata)``), else None and a warning."""
        data = value[0] if isinstance(value, tuple) and len(value) == 2 else value
        if value is None or isinstance(data, self.return_type):
            return value
        warnings.warn(
            f"{self.format_type} formatter returned invalid type {type(data)} "
            f"(expected {self.return_type}) for object: {type(obj).__name__}",
            FormatterWarning,
            stacklevel=2,
        )
        return None

    # -- registrations ---------------------------------------------------------------

    def has_printers(self) -> bool:
        return bool(self.type_printers or self.deferred_printers or self.singleton_printers)

    def lookup(self, obj: Any) -> Printer_:
        """The printer registered for ``obj`` (by identity, then class); KeyError if none."""
        if self.singleton_printers and id(obj) in self.singleton_printers:
            return self.singleton_printers[id(obj)]
        if not self.type_printers and not self.deferred_printers:
            raise KeyError(f"no printer registered for {type(obj)!r}")
        return self.lookup_by_type(getattr(obj, "__class__", None) or type(obj))

    def lookup_by_type(self, typ: Any) -> Printer_:
        """The printer for class ``typ`` (along its MRO) or for ``"module.Name"``; KeyError if none."""
        if isinstance(typ, str):
            key = _name_key(typ)
            if key in self.deferred_printers:
                return self.deferred_printers[key]
            for cls, printer in self.type_printers.items():
                if _type_key(cls) == key:
                    return printer
        else:
            for cls in getattr(typ, "__mro__", (typ,)):
                if cls in self.type_printers:
                    return self.type_printers[cls]
                key = _type_key(cls)
                if key in self.deferred_printers:  # registered by name: now by class
                    self.type_printers[cls] = self.deferred_printers.pop(key)
                    return self.type_printers[cls]
        raise KeyError(f"no printer registered for {typ!r}")

    def for_type(self, typ: Any, func: Printer_ = None) -> Printer_:
        """Register ``func`` for class ``typ`` (or ``"module.Name"``); return the previous one.

        With ``func`` None, only return the printer registered now (None if none).
        """
        if isinstance(typ, str):
            return self.for_type_by_name(*_name_key(typ), func)
        try:
            old = self.lookup_by_type(typ)
        except KeyError:
            old = None
        if func is not None:
            self.type_printers[typ] = func
        return old

    def for_type_by_name(self, type_module: str, type_name: str, func: Printer_ = None) -> Printer_:
        """Register ``func`` for the class ``type_module.type_name`` without importing it."""
        try:
            old = self.lookup_by_type(f"{type_module}.{type_name}")
        except KeyError:
            old = None
        if func is not None:
            self.deferred_printers[(type_module, type_name)] = func
        return old

    def pop(self, typ: Any, default: Any = _MISSING) -> Printer_:
        """Remove and return the printer of class ``typ`` (or ``"module.Name"``)."""
        if isinstance(typ, str):
            key = _name_key(typ)
            found = self.deferred_printers.pop(key, _MISSING)
            for cls in [c for c in self.type_printers if _type_key(c) == key]:
                found = self.type_printers.pop(cls)
        else:
            found = self.type_printers.pop(typ, _MISSING)
            found = self.deferred_printers.pop(_type_key(typ), found)
        if found is _MISSING:
            if default is _MISSING:
                raise KeyError(f"no printer registered for {typ!r}")
            return default
        return found

    def __contains__(self, typ: Any) -> bool:
        try:
            self.lookup_by_type(typ)
        except KeyError:
            return False
        return True


class PlainTextFormatter(BaseFormatter):
    """text/plain: printers ``func(obj, p, cycle)``, ``_repr_pretty_``, else as IPython writes it.

    See :mod:`fastkernel.interpreter.builtinprinters` for objects without a printer.
    """

    print_method = "_repr_pretty_"

    def __init__(self) -> None:
        super().__init__()
        self.pprint = True
        self.max_width = 79
        self.newline = "\n"
        self.max_seq_length = 1000

    def __call__(self, obj: Any) -> Any:
        """The text, or for a repr that raises a placeholder (and a line on stderr), as IPython's
        formatters swallow errors; a cell's result uses :meth:`text`, which raises."""
        if not self.enabled:
            return None
        try:
            return self.text(obj)
        except Exception as err:
            report(obj, "__repr__", err)
            return f"<{type(obj).__name__} object (repr failed)>"

    def text(self, obj: Any) -> str:
        """``obj`` as text; raises what its repr (or printer) raises."""
        if not self.pprint or (type(obj) in SCALARS and not self.has_printers()):
            return repr(obj)
        from fastkernel.interpreter import builtinprinters  # on the first result that needs it

        if not self.has_printers():
            text = builtinprinters.quick_text(obj, self.max_width, self.max_seq_length)
            if text is not None:
                return text
        from fastkernel.interpreter.pretty import Printer

        printer = Printer(self.dispatch, self.max_width, self.newline, self.max_seq_length)
        printer.pretty(obj)
        return printer.getvalue()

    def dispatch(self, obj: Any, p: Printer, cycle: bool) -> None:
        """Write ``obj`` to ``p``: its registered printer, else as IPython would."""
        from fastkernel.interpreter import builtinprinters

        printer = self.find(obj)
        if printer is None:
            builtinprinters.write(obj, p, cycle)
        else:
            printer(obj, p, cycle)


class MimeBundleFormatter(BaseFormatter):
    """``_repr_mimebundle_(include=..., exclude=...)``: ``(data, metadata)``, both dicts."""

    format_type = "mimebundle"
    print_method = "_repr_mimebundle_"
    return_type = dict

    def __call__(self, obj: Any, include: Any = None, exclude: Any = None) -> Any:  # type: ignore[override]
        if not self.enabled:
            return {}, {}
        printer = self.find(obj)
        if printer is not None:
            value = self.call(obj, None, lambda: printer(obj))
        else:
            method = self.method(obj)
            value = None
            if method is not None:
                value = self.call(obj, self.print_method, lambda: method(include=include, exclude=exclude))
        if isinstance(value, tuple):
            return value[0], value[1] or {}
        return (value, {}) if value is not None else ({}, {})


class IPythonDisplayFormatter(BaseFormatter):
    """``_ipython_display_``: True when the object displayed itself (nothing else is shown).

    An object whose method raises (``NotImplementedError`` included: ipywidgets' and ipympl's
    "use my MIME bundle instead") is formatted as usual.
    """

    format_type = "ipython_display"
    print_method = "_ipython_display_"

    def __call__(self, obj: Any) -> bool:
        if not self.enabled:
            return False
        printer = self.find(obj)
        if printer is not None:
            func, name = (lambda: printer(obj)), ""
        else:
            func, name = self.method(obj), self.print_method
            if func is None:
                return False
        try:
            func()
        except NotImplementedError:
            return False
        except Exception as err:
            report(obj, name or self.format_type, err, printer=not name)
            return False
        return True


class JSONFormatter(BaseFormatter):
    """application/json: a list or dict (a JSON string is parsed, with a warning, as IPython does)."""

    format_type = "application/json"
    print_method = "_repr_json_"
    return_type = (list, dict)

    def check(self, value: Any, obj: Any) -> Any:
        data, md = value if isinstance(value, tuple) and len(value) == 2 else (value, _MISSING)
        if isinstance(data, str):
            warnings.warn(
                "JSON expects JSONable list/dict containers, not JSON strings", FormatterWarning, stacklevel=2
            )
            data = json.loads(data)
            value = data if md is _MISSING else (data, md)
        return super().check(value, obj)


def _mime_formatter(mime: str, method: str, returns: Any = str) -> BaseFormatter:
    formatter = BaseFormatter()
    formatter.format_type, formatter.print_method, formatter.return_type = mime, method, returns
    return formatter


def default_formatters() -> dict[str, BaseFormatter]:
    """IPython's formatters, in IPython's order."""
    binary = (bytes, str)
    return {
        "text/plain": PlainTextFormatter(),
        "text/html": _mime_formatter("text/html", "_repr_html_"),
        "text/markdown": _mime_formatter("text/markdown", "_repr_markdown_"),
        "image/svg+xml": _mime_formatter("image/svg+xml", "_repr_svg_"),
        "image/png": _mime_formatter("image/png", "_repr_png_", binary),
        "application/pdf": _mime_formatter("application/pdf", "_repr_pdf_", binary),
        "image/jpeg": _mime_formatter("image/jpeg", "_repr_jpeg_", binary),
        "text/latex": _mime_formatter("text/latex", "_repr_latex_"),
        "application/json": JSONFormatter(),
        "application/javascript": _mime_formatter("application/javascript", "_repr_javascript_"),
    }
