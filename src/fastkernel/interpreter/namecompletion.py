"""The namespace completer: what answers a completion when jedi cannot (too slow, or failing).

It completes from names alone, without inference: ``dir()`` of the dotted prefix object
(attribute lookup only, nothing is called), names of the namespace, builtins and keywords, and
module names in import statements. :class:`Match`, the item every completer returns, is
defined here, below :mod:`fastkernel.interpreter.completion`, which uses this module.
"""

from __future__ import annotations

import builtins
import keyword
import re
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastkernel.interpreter.livenames import (
    DOTTED_TAIL,
    attribute_names,
    cell_imports,
    get_attribute,
    resolve_dotted,
)

_IMPORT = re.compile(r"^\s*import\s+(?:.*,\s*)?([\w.]*)$")
_FROM_MODULE = re.compile(r"^\s*from\s+([\w.]*)$")
_FROM_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(?:\(?\s*(?:\w+\s*(?:as\s+\w+\s*)?,\s*)*)(\w*)$")


@dataclass
class Match:
    """One completion: ``text`` replaces ``code[start:cursor]``."""

    start: int
    text: str
    type: str = ""
    signature: str = ""


def namespace_matches(namespace: dict[str, Any], code: str, cursor: int) -> list[Match]:
    """Completions at ``cursor`` from the names in ``namespace``, builtins and keywords."""
    line_start = max(code.rfind("\n", 0, cursor), code.rfind("\r", 0, cursor)) + 1
    line = code[line_start:cursor].rsplit(";", 1)[-1]  # the statement the cursor is in
    imported = _import_matches(line, cursor)
    if imported is not None:
        return imported
    m = DOTTED_TAIL.search(line)
    assert m is not None  # the pattern matches the empty string at the end
    partial = m.group(2) or ""
    dotted = re.sub(r"\s+", "", m.group(1)).rstrip(".")
    start = cursor - len(partial)
    if line[: m.start()].rstrip().endswith("."):
        return []  # an attribute of f(), "s", 1 or the like: evaluating it would run code
    if dotted:
        found, obj = resolve_dotted(dotted, {**namespace, **cell_imports(code[:cursor], cursor)[1]})
        if not found:
            return []
        return _named(start, partial, attribute_names(obj), lambda n: _kind(get_attribute(obj, n)))
    names = [*namespace, *dir(builtins)]
    kinds: dict[str, str] = dict.fromkeys(keyword.kwlist, "keyword")

    def kind(name: str) -> str:
        if name in kinds:
            return kinds[name]
        value = namespace[name] if name in namespace else getattr(builtins, name, None)
        return _kind(value)

    return _named(start, partial, [*names, *keyword.kwlist], kind)


def _import_matches(line: str, cursor: int) -> list[Match] | None:
    """Module names (or a module's names) for an ``import`` or ``from`` line; None for other lines."""
    m = _IMPORT.match(line) or _FROM_MODULE.match(line)
    if m:
        dotted = m.group(1)
        package, _, partial = dotted.rpartition(".")
        names = _submodules(package)
        return _named(cursor - len(partial), partial, names, lambda n: "module")
    m = _FROM_IMPORT.match(line)
    if m:
        module_name, partial = m.group(1), m.group(2)
        module = sys.modules.get(module_name)
        names = [*(dir(module) if module is not None else ()), *_submodules(module_name)]
        return _named(
            cursor - len(partial), partial, names, lambda n: _kind(get_attribute(module, n), "module")
        )
    return None


def _named(start: int, partial: str, names: Iterable[str], kind: Callable[[str], str]) -> list[Match]:
    """The ``names`` that start with ``partial`` (case-insensitive, as jedi), in jedi's order.

    Private names (``_x``) only when ``partial`` starts with ``_``; ``kind(name)`` gives each type.
    """
    folded = partial.lower()
    chosen = sorted({n for n in names if n.lower().startswith(folded) and n.isidentifier()}, key=_order)
    if not partial.startswith("_"):
        chosen = [n for n in chosen if not n.startswith("_")]
    return [Match(start, n, kind(n)) for n in chosen]


def _order(name: str) -> tuple[bool, str, str]:
    return (name.startswith("__"), name.lower(), name)


def _kind(value: Any, default: str = "instance") -> str:
    """The completion type of ``value``: module, class, function or instance (``default`` for None)."""
    if value is None:
        return default
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    if callable(value):
        return "function"
    return "instance"


_top_level: list[str] = []  # names of importable top-level modules, listed once


def _submodules(package: str) -> list[str]:
    """Module names directly inside ``package`` ("" for top-level), without importing anything."""
    import pkgutil

    if not package:
        if not _top_level:
            _top_level.extend(sys.builtin_module_names)
            _top_level.extend(info.name for info in pkgutil.iter_modules())
        return [*_top_level, *(n for n in sys.modules if "." not in n)]
    module = sys.modules.get(package)
    path = getattr(module, "__path__", None)
    prefix = package + "."
    loaded = [n[len(prefix) :] for n in sys.modules if n.startswith(prefix) and "." not in n[len(prefix) :]]
    # Modules bound as attributes count too: ``import os.path`` works although os is no package.
    bound = [n for n, v in vars(module).items() if isinstance(v, types.ModuleType)] if module else []
    listed = [info.name for info in pkgutil.iter_modules(path)] if path is not None else []
    return [*listed, *loaded, *bound]
