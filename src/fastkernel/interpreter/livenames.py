"""Name resolution on the live namespace, for completion and inspection: nothing is called.

Completion and ``inspect_request`` look names up in the user's ``__main__`` while the user
types, so no user code may run: only attribute access (which a property or a module
``__getattr__`` can still turn into code; those errors are swallowed). :func:`resolve_dotted`
finds the object behind ``a.b.c``; :func:`cell_imports` finds what the cell's own imports of
already-loaded modules would bind, before the cell has run.
"""

from __future__ import annotations

import builtins
import re
import sys
from typing import Any

# The dotted name at the end of some text: group 1 the ``a.b.`` prefix, group 2 the last name.
DOTTED_TAIL = re.compile(r"((?:[^\W\d]\w*\s*\.\s*)*)([^\W\d]\w*)?$")
GLOBAL = object()  # the owner of names completed without a dotted prefix (see dotted_owner)


def resolve_dotted(dotted: str, namespace: dict[str, Any]) -> tuple[bool, Any]:
    """Look ``a.b.c`` up in ``namespace`` (then builtins) by attribute access only; nothing is called."""
    parts = dotted.split(".")
    if not all(p.isidentifier() for p in parts):
        return False, None
    first = parts[0]
    if first in namespace:
        obj = namespace[first]
    elif hasattr(builtins, first):
        obj = getattr(builtins, first)
    else:
        return False, None
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except Exception:
            return False, None
    return True, obj


def get_attribute(obj: Any, name: str) -> Any:
    """``getattr(obj, name)``, or None if it raises."""
    try:
        return getattr(obj, name)
    except Exception:  # a property or module __getattr__ may raise anything
        return None


def attribute_names(obj: Any) -> list[str]:
    """``dir(obj)``, or [] if it raises."""
    try:
        return list(dir(obj))
    except Exception:
        return []


def dotted_owner(code: str, start: int, namespace: dict[str, Any]) -> Any:
    """The live object whose attributes are being completed at ``start``, if it can be looked up.

    :data:`GLOBAL` for a bare name (the namespace, then builtins); None when unknown (in a
    string, or after a call or a literal). Attribute access only: nothing is called.
    """
    line_start = max(code.rfind("\n", 0, start), code.rfind("\r", 0, start)) + 1
    before = code[line_start:start]
    if not before.rstrip().endswith("."):
        return None if before[-1:] in ("'", '"') else GLOBAL
    m = DOTTED_TAIL.search(before.rstrip()[:-1])
    if m is None or not m.group(2) or before[: m.start()].rstrip().endswith("."):
        return None
    dotted = re.sub(r"\s+", "", m.group(0))
    found, obj = resolve_dotted(dotted, namespace)
    return obj if found else None


_AS = r"(?:[ \t]+as[ \t]+\w+)?"  # an optional "as alias"
# One import statement on its own, or between semicolons: the module list, or the from part.
_IMPORT_STATEMENT = re.compile(
    rf"(?:^|(?<=;))[ \t]*(?:import[ \t]+(?P<modules>[\w.]+{_AS}(?:[ \t]*,[ \t]*[\w.]+{_AS})*)"
    rf"|from[ \t]+(?P<source>[\w.]+)[ \t]+import[ \t]+(?P<names>\w+{_AS}(?:[ \t]*,[ \t]*\w+{_AS})*))"
    r"(?=[ \t]*(?:[;#\r\n]|$))",
    re.M,
)


def _binds(m: re.Match[str]) -> dict[str, Any] | None:
    """What the import statement ``m`` binds, if every module it names is already loaded."""
    found: dict[str, Any] = {}
    if m.group("modules"):
        for item in m.group("modules").split(","):
            parts = item.split()  # name, or name "as" alias
            name, alias = parts[0], parts[2] if len(parts) == 3 else ""
            target = name if alias else name.split(".")[0]
            if name not in sys.modules or target not in sys.modules:
                return None
            found[alias or target] = sys.modules[target]
        return found
    source = m.group("source")
    module = sys.modules.get(source)
    for item in m.group("names").split(","):
        parts = item.split()
        name, alias = parts[0], parts[2] if len(parts) == 3 else ""
        if f"{source}.{name}" in sys.modules:
            found[alias or name] = sys.modules[f"{source}.{name}"]
        elif module is not None and name in vars(module):
            found[alias or name] = vars(module)[name]
        else:
            return None
    return found


def cell_imports(code: str, cursor: int) -> tuple[str, dict[str, Any]]:
    """The cell with its imports of already-loaded modules turned into ``pass``, and what they bind.

    The cell has not run, but ``import os; os.pa`` should complete, and quickly: jedi infers
    a module from its source and stubs (hundreds of ms for ``os``) but reads a live module in
    a few. So each import statement that binds only modules (or their attributes) already in
    ``sys.modules`` becomes ``pass`` padded to the same length (offsets stay valid), and the
    objects it binds are returned. Nothing is imported. The statement the cursor is in is
    left alone (``import os.pa`` completes module names).
    """
    bound: dict[str, Any] = {}

    def replace(m: re.Match[str]) -> str:
        text = m.group(0)
        if m.start() <= cursor <= m.end():
            return text
        names = _binds(m)
        if names is None:
            return text
        bound.update(names)
        indent = len(text) - len(text.lstrip())
        return text[:indent] + "pass".ljust(len(text) - indent)

    if "import" not in code:
        return code, bound
    return _IMPORT_STATEMENT.sub(replace, code), bound
