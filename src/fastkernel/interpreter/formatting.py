"""Build MIME bundles for objects: ``_repr_mimebundle_``, ``_repr_*_`` and text/plain."""

from __future__ import annotations

import sys
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
