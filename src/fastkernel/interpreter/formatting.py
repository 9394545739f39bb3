"""MIME bundles for objects, as IPython's display formatter builds them.

:class:`DisplayFormatter` is ``get_ipython().display_formatter``; each interpreter has one
(``Interpreter.formatter``). :meth:`DisplayFormatter.format` is what a cell's result,
``display()`` and ``user_expressions`` go through, in IPython's order:

1. ``ipython_display_formatter``: an object with ``_ipython_display_`` (or a printer registered
   there) displays itself, and the bundle is empty: nothing else is shown, no execute_result;
2. ``mimebundle_formatter``: ``_repr_mimebundle_(include=..., exclude=...)``, then filtered by
   ``include``/``exclude``;
3. each of ``formatters`` (text/plain, text/html, ... in IPython's order, and any a library
   adds) for the MIME types the bundle does not have yet, and for those it has where a printer
   is registered for the object's class (a registration wins over the object's own bundle).

Binary data (PNG, JPEG, PDF as bytes) is base64-encoded, as the message spec wants.
"""

from __future__ import annotations

import threading
from typing import Any

from fastkernel.interpreter.running import current

Bundle = dict[str, Any]


class DisplayFormatter:
    """``get_ipython().display_formatter``: an object's ``(data, metadata)`` MIME bundle."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        from fastkernel.interpreter.formatters import (  # with the first result, not at kernel start
            IPythonDisplayFormatter,
            MimeBundleFormatter,
            default_formatters,
        )

        self.formatters: dict[str, Any] = default_formatters()
        self.ipython_display_formatter = IPythonDisplayFormatter()
        self.mimebundle_formatter = MimeBundleFormatter()
        # Formatting runs a library's repr code: one thread at a time (see Interpreter.display_lock).
        self.lock = lock if lock is not None else threading.RLock()

    def __repr__(self) -> str:
        return "<fastkernel DisplayFormatter>"

    @property
    def active_types(self) -> list[str]:
        """The MIME types of the enabled formatters."""
        return [mime for mime, f in self.formatters.items() if getattr(f, "enabled", True)]

    def format(
        self, obj: Any, include: Any = None, exclude: Any = None, *, strict_text: bool = False
    ) -> tuple[Bundle, Bundle]:
        """Return ``(data, metadata)`` for ``obj``; both empty when it displayed itself.

        With ``strict_text`` (a cell's result) a text/plain repr that raises raises here, so the
        cell fails as in Python's REPL and IPython 9; otherwise a placeholder stands in for it.
        """
        with self.lock:
            return self._format(obj, include, exclude, strict_text)

    def _format(self, obj: Any, include: Any, exclude: Any, strict_text: bool) -> tuple[Bundle, Bundle]:
        if self.ipython_display_formatter(obj):
            return {}, {}
        data, metadata = self.mimebundle_formatter(obj, include=include, exclude=exclude)
        if data or metadata:
            data = {k: v for k, v in data.items() if _wanted(k, include, exclude)}
            metadata = {k: v for k, v in metadata.items() if _wanted(k, include, exclude)}
        for mime, formatter in list(self.formatters.items()):
            if not _wanted(mime, include, exclude) or (mime in data and not _registered(formatter, obj)):
                continue
            strict = strict_text and mime == "text/plain" and getattr(formatter, "enabled", False)
            value = formatter.text(obj) if strict and hasattr(formatter, "text") else formatter(obj)
            md = None
            if isinstance(value, tuple) and len(value) == 2:
                value, md = value
            if value is not None:
                data[mime] = value
            if md is not None:
                metadata[mime] = md
        return {k: _binary(v) for k, v in data.items()}, metadata


def _wanted(mime: str, include: Any, exclude: Any) -> bool:
    return (not include or mime in include) and (not exclude or mime not in exclude)


def _registered(formatter: Any, obj: Any) -> bool:
    """Whether a printer is registered for ``obj`` with ``formatter`` (it beats the object's bundle)."""
    find = getattr(type(formatter), "find", None)  # fastkernel's formatters: no KeyError to raise
    if find is not None:
        return find(formatter, obj) is not None
    try:
        formatter.lookup(obj)
    except Exception:  # KeyError: none; anything else: a formatter object of another kind
        return False
    return True


def _binary(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return value


_fallback: DisplayFormatter | None = None


def display_formatter() -> DisplayFormatter:
    """The running interpreter's display formatter (one of its own when none runs)."""
    global _fallback
    interpreter = current()
    if interpreter is not None:
        return interpreter.formatter
    if _fallback is None:
        _fallback = DisplayFormatter()
    return _fallback


def format_object(obj: Any, include: Any = None, exclude: Any = None) -> tuple[Bundle, Bundle]:
    """``(data, metadata)`` for ``obj`` with :func:`display_formatter`."""
    return display_formatter().format(obj, include, exclude)


def register_type_formatter(cls_or_name: type | str, mime: str, func: Any) -> None:
    """Format instances of a class (and its subclasses) as ``mime`` with ``func(obj)``.

    ``cls_or_name`` is the class or its ``"module.Name"`` (``"matplotlib.figure.Figure"``):
    ``formatters[mime].for_type(cls_or_name, func)`` of :func:`display_formatter`. ``func``
    returns the data (bytes are base64-encoded), ``(data, metadata)``, or None for nothing.
    """
    if not callable(func):
        raise TypeError(f"need a callable, got {func!r}")
    display_formatter().formatters[mime].for_type(cls_or_name, func)


def unregister_type_formatter(cls_or_name: type | str, mime: str | None = None) -> None:
    """Remove the printer for ``mime`` (for every MIME type with None) of a class."""
    formatters = display_formatter().formatters
    for name in [mime] if mime is not None else list(formatters):
        pop = getattr(formatters.get(name), "pop", None)
        if pop is not None:
            pop(cls_or_name, None)
