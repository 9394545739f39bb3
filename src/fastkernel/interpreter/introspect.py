"""Object help for ``inspect_request``: what is at the cursor, and a plain-text description.

:func:`name_at_cursor` finds the dotted name under or just before the cursor, or, when the
cursor is elsewhere inside a call's parentheses, the called name (``len(|`` -> ``len``). The
name is looked up in the user namespace (then builtins) by attribute access only: nothing is
called and no expression is evaluated. :func:`describe` writes the signature, type, file and
docstring (detail level 0), or the source instead of the docstring (level 1, when the source
can be found, which includes functions and classes defined in cells).
"""

from __future__ import annotations

import inspect
import io
import keyword
import tokenize
from collections.abc import Mapping
from typing import Any

from fastkernel.interpreter.livenames import resolve_dotted

Content = dict[str, Any]
MAX_STRING_FORM = 200
_OPENERS = {"(", "[", "{"}
_CLOSERS = {")", "]", "}"}


def name_at_cursor(code: str, cursor: int) -> str:
    """The dotted name under or before ``cursor`` (a code point offset), or the call around it.

    Returns "" when there is none. ``os.pa|th.join`` gives ``os.path``; ``f(x, |`` gives ``f``.
    """
    offsets = [0]
    for line in io.StringIO(code).readlines():  # tokenize's lines: split on "\n" only
        offsets.append(offsets[-1] + len(line))

    def at(position: tuple[int, int]) -> int:
        row, col = position
        return offsets[min(row - 1, len(offsets) - 1)] + col

    calls: list[str] = []  # for each open bracket: the name called ("" for none)
    dotted: list[str] = []
    previous: tokenize.TokenInfo | None = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            start, end = at(tok.start), at(tok.end)
            if start > cursor or (start == cursor and tok.type != tokenize.NAME):
                break
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                follows_dot = previous is not None and previous.type == tokenize.OP and previous.string == "."
                dotted = [*dotted, tok.string] if follows_dot and dotted else [tok.string]
                if start <= cursor <= end:
                    return ".".join(dotted)
            elif tok.type == tokenize.OP and tok.string == ".":
                pass
            elif tok.type == tokenize.OP and tok.string in _OPENERS:
                called = tok.string == "(" and previous is not None and previous.type == tokenize.NAME
                calls.append(".".join(dotted) if called else "")
                dotted = []
            elif tok.type == tokenize.OP and tok.string in _CLOSERS:
                if calls:
                    calls.pop()
                dotted = []
            elif tok.type not in (tokenize.NL, tokenize.COMMENT):
                dotted = []
            previous = tok
    except (tokenize.TokenError, SyntaxError):  # code that is still being typed: len(
        pass
    return next((name for name in reversed(calls) if name), "")


def _is_instance(obj: Any) -> bool:
    return not (
        inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj) or isinstance(obj, property)
    )


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError, RecursionError):
        return ""


def _file(obj: Any, labels: Mapping[str, str]) -> str:
    target = obj if not _is_instance(obj) else type(obj)
    try:
        name = inspect.getsourcefile(target) or inspect.getfile(target)
    except (TypeError, OSError):
        return ""
    return labels.get(name, name)


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (TypeError, OSError, IndentationError, SyntaxError):
        return ""


def _string_form(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception as err:  # a broken __repr__ still gets described
        return f"<repr failed: {type(err).__name__}>"
    return text if len(text) <= MAX_STRING_FORM else text[: MAX_STRING_FORM - 3] + "..."


def describe(obj: Any, detail_level: int = 0, name: str = "", labels: Mapping[str, str] | None = None) -> str:
    """Plain-text help on ``obj``; ``labels`` maps cell file names to ``Cell In[n]``."""
    labels = labels or {}
    fields: list[tuple[str, str]] = []
    instance = _is_instance(obj)
    if inspect.isclass(obj):
        signature = _signature(obj)
        if signature:
            fields.append(("Init signature", f"{name or obj.__name__}{signature}"))
    elif callable(obj):
        signature = _signature(obj)
        if signature:
            label = "Call signature" if instance else "Signature"
            fields.append((label, f"{name or getattr(obj, '__name__', '')}{signature}"))
    kind = type(obj)
    fields.append(
        (
            "Type",
            kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}",
        )
    )
    if instance:
        fields.append(("String form", _string_form(obj)))
        length = _length(obj)
        if length is not None:
            fields.append(("Length", str(length)))
    where = _file(obj, labels)
    if where:
        fields.append(("File", where))
    source = _source(obj) if detail_level >= 1 and not instance else ""
    if source:
        fields.append(("Source", source.rstrip("\n")))
    else:
        if instance:
            own = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else None
            class_doc = inspect.getdoc(kind)
            doc = inspect.cleandoc(own) if own and own != kind.__doc__ else None
            fields.append(("Docstring", doc or "<no docstring>"))
            if class_doc:
                fields.append(("Class docstring", class_doc))
        else:
            fields.append(("Docstring", inspect.getdoc(obj) or "<no docstring>"))
        if inspect.isclass(obj):
            init = getattr(obj, "__init__", None)
            init_doc = inspect.getdoc(init) if init is not None and init is not object.__init__ else None
            if init_doc and init_doc != inspect.getdoc(obj):
                fields.append(("Init docstring", init_doc))
    return "\n".join(_field(label, text) for label, text in fields)


def _length(obj: Any) -> int | None:
    # Only for the builtin containers: len() of other objects may run arbitrary code.
    if isinstance(obj, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(obj)
    return None


def _field(label: str, text: str) -> str:
    head = f"{label}:"
    if "\n" in text:
        return f"{head}\n{text}"
    return f"{head:<16} {text}"


def inspect_reply(
    code: str, cursor_pos: int, detail_level: int, namespace: dict[str, Any], labels: Mapping[str, str]
) -> Content:
    """The content of an ``inspect_reply``: ``found: false`` and no data for an unknown name."""
    cursor = max(0, min(cursor_pos, len(code)))
    name = name_at_cursor(code, cursor)
    found, obj = resolve_dotted(name, namespace) if name else (False, None)
    if not found:
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    return {
        "status": "ok",
        "found": True,
        "data": {"text/plain": describe(obj, detail_level, name, labels)},
        "metadata": {},
    }


# IPython's ``object_inspect`` keys, all present (None when not known), as libraries read them.
INFO_KEYS = (
    "base_class",
    "call_def",
    "call_docstring",
    "class_docstring",
    "definition",
    "docstring",
    "file",
    "found",
    "init_definition",
    "init_docstring",
    "isalias",
    "isclass",
    "ismagic",
    "length",
    "name",
    "namespace",
    "source",
    "string_form",
    "subclasses",
    "type_name",
)


def object_info(
    name: str, found: bool, obj: Any, detail_level: int = 0, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What IPython's ``get_ipython().object_inspect(name)`` returns, for ``obj`` found as ``name``."""
    info: dict[str, Any] = dict.fromkeys(INFO_KEYS)
    info.update(name=name, found=found, isalias=False, ismagic=False, isclass=False)
    if not found:
        return info
    labels = labels or {}
    instance = _is_instance(obj)
    is_class = inspect.isclass(obj)
    signature = _signature(obj) if callable(obj) else ""
    info.update(
        namespace="Interactive",
        type_name=type(obj).__name__,
        base_class=str(type(obj)),
        string_form=_string_form(obj),
        isclass=is_class or None,
        file=_file(obj, labels) or None,
        docstring=inspect.getdoc(obj),  # an instance without one of its own: its class's
        length=str(_length(obj)) if _length(obj) is not None else None,
        source=(_source(obj) or None) if detail_level >= 1 and not instance else None,
    )
    if is_class:
        info["init_definition"] = f"{name}{signature}" if signature else None
        init = getattr(obj, "__init__", None)
        if init is not None and init is not object.__init__:
            info["init_docstring"] = inspect.getdoc(init)
    elif instance:
        class_doc = inspect.getdoc(type(obj))
        info["class_docstring"] = class_doc if class_doc != info["docstring"] else None
        if callable(obj) and signature:
            info["call_def"] = f"{name}{signature}"
            info["call_docstring"] = inspect.getdoc(type(obj).__call__)
    elif signature:
        info["definition"] = f"{name}{signature}"
    return info
