"""Build MIME bundles for objects: ``_repr_mimebundle_``, ``_repr_*_`` and text/plain."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
    ("_repr_pdf_", "application/pdf"),
)
PRETTY_WIDTH = 79

Bundle = dict[str, Any]


TypeFormatter = Callable[[Any], Any]
# Formatters by type, keyed by "module.QualName" so that registering one for a library's class
# does not import the library: {type name: {mime: formatter}}. Looked up along the MRO.
_type_formatters: dict[str, dict[str, TypeFormatter]] = {}


def _type_name(cls_or_name: type | str) -> str:
    if isinstance(cls_or_name, str):
        return cls_or_name
    return f"{cls_or_name.__module__}.{cls_or_name.__qualname__}"


def register_type_formatter(cls_or_name: type | str, mime: str, func: TypeFormatter) -> None:
    """Format instances of a class (and its subclasses) as ``mime`` with ``func(obj)``.

    ``cls_or_name`` is the class or its ``"module.QualName"`` (``"matplotlib.figure.Figure"``).
    ``func`` returns the data (bytes are base64-encoded), ``(data, metadata)``, or None for
    nothing. A type formatter comes after ``_repr_mimebundle_`` and before ``_repr_*_``
    methods, as IPython's type printers do; the most derived class's formatter wins.
    """
    if not callable(func):
        raise TypeError(f"need a callable, got {func!r}")
    _type_formatters.setdefault(_type_name(cls_or_name), {})[mime] = func


def unregister_type_formatter(cls_or_name: type | str, mime: str | None = None) -> None:
    """Remove the formatter for ``mime`` (every formatter with None) of a class."""
    name = _type_name(cls_or_name)
    if mime is None:
        _type_formatters.pop(name, None)
    elif name in _type_formatters:
        _type_formatters[name].pop(mime, None)
        if not _type_formatters[name]:
            del _type_formatters[name]


def _formatters_for(obj: Any) -> dict[str, TypeFormatter]:
    found: dict[str, TypeFormatter] = {}
    if not _type_formatters or isinstance(obj, type):
        return found
    for cls in type(obj).__mro__:
        for mime, func in _type_formatters.get(_type_name(cls), {}).items():
            found.setdefault(mime, func)
    return found


def plain_text(obj: Any) -> str:
    """``repr(obj)``, pretty-printed over several lines when a container is long."""
    text = repr(obj)
    if len(text) > PRETTY_WIDTH and type(obj) in (dict, list, tuple, set, frozenset):
        import pprint

        text = pprint.pformat(obj, width=PRETTY_WIDTH, sort_dicts=False)
    return text


def _report(method: str, obj: Any, err: BaseException) -> None:
    # A broken _repr_*_ must not break the cell: say so on stderr and move on.
    print(
        f"{type(obj).__name__}.{method} raised {type(err).__name__}: {err}",
        file=sys.stderr,
    )


def _call(obj: Any, method: str) -> Any:
    func = getattr(type(obj), method, None)
    if func is None or isinstance(obj, type):
        return None
    try:
        return getattr(obj, method)()
    except Exception as err:
        _report(method, obj, err)
        return None


def _binary(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def format_object(obj: Any) -> tuple[Bundle, Bundle]:
    """Return ``(data, metadata)`` for ``obj``; ``text/plain`` is always present."""
    data: Bundle = {}
    metadata: Bundle = {}
    bundle = _call(obj, "_repr_mimebundle_")
    if isinstance(bundle, tuple) and len(bundle) == 2:
        bundle, bundle_md = bundle
        metadata.update(bundle_md or {})
    if isinstance(bundle, dict):
        data.update({k: _binary(v) for k, v in bundle.items()})
    for mime, func in _formatters_for(obj).items():
        if mime in data:
            continue
        try:
            value = func(obj)
        except Exception as err:  # a broken formatter must not break the cell either
            problem = f"{type(err).__name__}: {err}"
            print(f"{type(obj).__name__}: could not make {mime}: {problem}", file=sys.stderr)
            continue
        if isinstance(value, tuple) and len(value) == 2:
            value, md = value
            if md:
                metadata[mime] = md
        if value is not None:
            data[mime] = _binary(value)
    for method, mime in REPR_METHODS:
        if mime in data:
            continue
        value = _call(obj, method)
        if isinstance(value, tuple) and len(value) == 2:
            value, md = value
            metadata[mime] = md
        if value is not None:
            data[mime] = _binary(value)
    if "text/plain" not in data:
        try:
            data["text/plain"] = plain_text(obj)
        except Exception as err:
            _report("__repr__", obj, err)
            data["text/plain"] = f"<{type(obj).__name__} object (repr failed)>"
    return data, metadata
