"""What ``obj?`` and ``obj??`` show: type, signature, docstring and, with ``??``, the source.

Plain text (no colours); ``inspect`` is imported on first use, not at kernel start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

_MAX_FORM = 200  # characters of str(obj) shown as its string form


def _signature(obj: Any) -> str | None:
    import inspect

    try:
        return f"{getattr(obj, '__name__', type(obj).__name__)}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return None


def _source(obj: Any) -> str | None:
    import inspect

    target = obj if (inspect.isroutine(obj) or inspect.isclass(obj) or inspect.ismodule(obj)) else None
    if target is None:
        return None
    try:
        return inspect.getsource(target).rstrip("\n")
    except (OSError, TypeError):  # builtins, code typed nowhere
        return None


def _file(obj: Any) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        return None


def _string_form(obj: Any) -> str:
    try:
        text = str(obj)
    except Exception as err:  # a broken __str__ must not break help
        return f"<str() failed: {type(err).__name__}: {err}>"
    return text if len(text) <= _MAX_FORM else text[: _MAX_FORM // 2] + " <...> " + text[-_MAX_FORM // 2 :]


def describe(obj: Any, detail_level: int = 0, labels: Mapping[str, str] | None = None) -> str:
    """A description of ``obj`` as IPython's ``obj?`` (``detail_level`` 0) or ``obj??`` (1) gives it.

    ``labels`` maps cell file names to what to show instead (``<cell-3>`` to ``Cell In[2]``).
    """
    import inspect

    fields: list[tuple[str, str]] = []
    is_class = inspect.isclass(obj)
    callable_ = callable(obj) and not is_class
    if not (callable_ or is_class or inspect.ismodule(obj)):
        fields.append(("String form", _string_form(obj)))
        with contextlib.suppress(Exception):  # no len(), or a broken one
            fields.append(("Length", str(len(obj))))
    signature = _signature(obj) if (callable_ or is_class) else None
    if signature:
        fields.append(("Init signature" if is_class else "Signature", signature))
    source = _source(obj) if detail_level >= 1 else None
    if source is None:
        fields.append(("Docstring", inspect.getdoc(obj) or "<no docstring>"))
    else:
        fields.append(("Source", source))
    path = _file(obj) if (callable_ or is_class or inspect.ismodule(obj)) else None
    if path:
        fields.append(("File", (labels or {}).get(path, path)))
    fields.append(("Type", type(obj).__name__))
    width = max(len(label) for label, _ in fields) + 2
    lines = []
    for label, value in fields:
        head = f"{label}:".ljust(width)
        lines.append(f"{head}{value}" if "\n" not in value else f"{label}:\n{value}")
    return "\n".join(lines)
