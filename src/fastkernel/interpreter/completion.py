"""Tab completion for ``complete_request``: jedi on the live namespace, bounded in time.

:class:`Completer` asks ``jedi.Interpreter`` about the cell's code and the user namespace
(attributes, module names in imports, keyword arguments, dictionary keys, file paths in
strings, names the cell defines earlier). jedi is imported on the first completion, not at
kernel start. Magics (``%ti``) are completed from ``interpreter.magics`` when it exists.

Cursor positions are Unicode code points (protocol 5.2), which is what ``str`` indexes and
what jedi's columns count, so converting is a matter of counting lines the way parso splits
them (``\\n``, ``\\r\\n`` and ``\\r``).

**Bounded latency.** The interpreter runs no threads (see docs/architecture.md), so jedi runs
on the main thread under a deadline (:func:`call_with_deadline`): a ``SIGALRM`` timer raises
:class:`DeadlineExceeded` in jedi when the time is up (``timeout``, default 0.5 s, or the
``FASTKERNEL_COMPLETION_TIMEOUT`` environment variable). Then, or when jedi raises, the
namespace completer answers instead: ``dir()`` of the dotted prefix object (attribute lookup
only, nothing is called), or names of the namespace, builtins and keywords. The alarm is
never delivered inside parso's cache module, so a half-written cache file cannot happen.
A timer the user's code has running is restored afterwards. Without ``SIGALRM`` (Windows)
or off the main thread, jedi runs without a deadline.
"""

from __future__ import annotations

import builtins
import keyword
import os
import re
import signal
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

DEFAULT_TIMEOUT = 0.5
TIMEOUT_ENV = "FASTKERNEL_COMPLETION_TIMEOUT"
# Signatures (for the types metadata) are looked up only while this share of the budget is left.
SIGNATURE_SHARE = 0.5
MAX_SIGNATURES = 100

T = TypeVar("T")
Content = dict[str, Any]

_DOTTED_TAIL = re.compile(r"((?:[^\W\d]\w*\s*\.\s*)*)([^\W\d]\w*)?$")
_IMPORT = re.compile(r"^\s*import\s+(?:.*,\s*)?([\w.]*)$")
_FROM_MODULE = re.compile(r"^\s*from\s+([\w.]*)$")
_FROM_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(?:\(?\s*(?:\w+\s*(?:as\s+\w+\s*)?,\s*)*)(\w*)$")
_MAGIC_LINE = re.compile(r"[ \t]*(%%?)(\w*)")  # matched from the line's start


class DeadlineExceeded(BaseException):
    """Raised in the main thread by the SIGALRM handler when jedi runs out of time.

    A BaseException, so that jedi's many ``except Exception`` do not swallow it.
    """


@dataclass
class Match:
    """One completion: ``text`` replaces ``code[start:cursor]``."""

    start: int
    text: str
    type: str = ""
    signature: str = ""


def completion_timeout() -> float:
    """The deadline for jedi in seconds, from ``FASTKERNEL_COMPLETION_TIMEOUT`` or the default."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _in_parso_cache(frame: Any) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") == "parso.cache":
            return True
        frame = frame.f_back
    return False


def call_with_deadline(fn: Callable[[], T], timeout: float) -> T:
    """``fn()``, raising :class:`DeadlineExceeded` in it once ``timeout`` seconds have passed.

    Uses ``ITIMER_REAL`` and ``SIGALRM`` on the main thread. A real-time timer that the user's
    code (or a test runner) has running is put back afterwards, less the time spent; if it is
    due within ``timeout``, or off the main thread, or without ``SIGALRM``, ``fn`` runs without
    a deadline.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return fn()
    other_delay, other_interval = signal.getitimer(signal.ITIMER_REAL)
    if other_delay and other_delay <= timeout:
        return fn()
    started = time.monotonic()
    armed = True

    def on_alarm(signum: int, frame: Any) -> None:
        if not armed:
            return
        if _in_parso_cache(frame):  # never leave a half-written cache file behind
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            return
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            return fn()
        finally:
            armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
        if other_delay:
            left = max(other_delay - (time.monotonic() - started), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, other_interval)


def line_and_column(code: str, cursor: int) -> tuple[int, int]:
    """jedi's (1-based line, column in code points) for the code point offset ``cursor``."""
    before = code[:cursor]
    line = 1 + before.count("\n") + before.count("\r") - before.count("\r\n")
    start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return line, cursor - start


def _blank_magics(code: str, cursor: int) -> str:
    """The cell with IPython syntax blanked out (same length, so offsets stay valid).

    A line starting with ``%``, ``%%`` or ``!`` is spaces; on the cursor's line only the magic
    or ``!`` itself is, so ``%time os.pa`` completes ``os.pa``.
    """
    if "%" not in code and "!" not in code:
        return code
    lines = code.splitlines(keepends=True)
    out = []
    offset = 0
    for line in lines:
        body = line.rstrip("\r\n")
        stripped = body.lstrip()
        if stripped[:1] in ("%", "!"):
            if offset <= cursor <= offset + len(body):
                magic = re.match(r"\s*(%%?\w*|!)", body)
                assert magic is not None
                body = " " * magic.end() + body[magic.end() :]
            else:
                body = " " * len(body)
        out.append(body + line[len(line.rstrip("\r\n")) :])
        offset += len(line)
    return "".join(out)


def _signature_text(completion: Any) -> str:
    try:
        signatures = completion.get_signatures()
    except Exception:
        return ""
    if not signatures:
        return ""
    text = signatures[0].to_string()
    return text[text.index("(") :] if "(" in text else text


_GLOBAL = object()  # the owner of names completed without a dotted prefix


def _owner(code: str, start: int, namespace: dict[str, Any]) -> Any:
    """The live object whose attributes are being completed at ``start``, if it can be looked up.

    ``_GLOBAL`` for a bare name (the namespace, then builtins); None when unknown (then jedi
    computes signatures). Attribute access only: nothing is called.
    """
    line_start = max(code.rfind("\n", 0, start), code.rfind("\r", 0, start)) + 1
    before = code[line_start:start]
    if not before.rstrip().endswith("."):
        return None if before[-1:] in ("'", '"') else _GLOBAL
    m = _DOTTED_TAIL.search(before.rstrip()[:-1])
    if m is None or not m.group(2) or before[: m.start()].rstrip().endswith("."):
        return None
    dotted = re.sub(r"\s+", "", m.group(0))
    found, obj = resolve_dotted(dotted, namespace)
    return obj if found else None


def _live_signature(owner: Any, name: str, namespace: dict[str, Any]) -> str | None:
    """The signature of the live ``owner.name`` (or global ``name``), or None to ask jedi."""
    import inspect

    if owner is _GLOBAL:
        found, value = resolve_dotted(name, namespace)
        if not found:
            return None
    else:
        try:
            value = inspect.getattr_static(owner, name)
        except AttributeError:
            return None
        if not callable(value):  # a descriptor (classmethod, property...): let jedi read it
            return None
        value = _attribute(owner, name)
    try:
        return str(inspect.signature(value))
    except (TypeError, ValueError, RecursionError):
        return None


class Completer:
    """Completes code for a frontend, against ``namespace`` (the user's ``__main__``)."""

    def __init__(
        self,
        namespace: dict[str, Any],
        magics: Callable[[], Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.namespace = namespace
        self.magics = magics  # returns the interpreter's magics registry, or None
        self.timeout = timeout
        self.last_source = ""  # "jedi", "fallback" or "magics": which completer answered (tests)

    # -- the reply ---------------------------------------------------------

    def reply(self, code: str, cursor_pos: int) -> Content:
        """The content of a ``complete_reply`` for ``code`` with the cursor at ``cursor_pos``."""
        cursor = max(0, min(cursor_pos, len(code)))
        matches = self.matches(code, cursor)
        start = min((m.start for m in matches), default=cursor)
        texts: list[str] = []
        types: list[dict[str, Any]] = []
        seen: set[str] = set()
        for m in matches:
            text = code[start : m.start] + m.text
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            types.append(
                {"start": start, "end": cursor, "text": text, "type": m.type, "signature": m.signature}
            )
        end = cursor
        # A completed string ('alpha') whose closing quote is already there replaces it too.
        after = code[cursor : cursor + 1]
        if texts and after in ("'", '"') and all(t.endswith(after) for t in texts):
            end = cursor + 1
            for item in types:
                item["end"] = end
        return {
            "status": "ok",
            "matches": texts,
            "cursor_start": start,
            "cursor_end": end,
            "metadata": {"_jupyter_types_experimental": types},
        }

    def matches(self, code: str, cursor: int) -> list[Match]:
        found = self._magic_matches(code, cursor)
        if found is not None:
            self.last_source = "magics"
            return found
        timeout = self.timeout if self.timeout is not None else completion_timeout()
        # Warnings that jedi or lazy attributes raise would land in some cell's output.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = self._jedi_matches(_blank_magics(code, cursor), cursor, timeout)
            except DeadlineExceeded:
                result = None
            except Exception:  # jedi's own bugs must not fail the request: the fallback answers
                result = None
            if result is not None:
                self.last_source = "jedi"
                return result
            self.last_source = "fallback"
            return self._fallback_matches(code, cursor)

    # -- jedi ----------------------------------------------------------------

    def _jedi_matches(self, code: str, cursor: int, timeout: float) -> list[Match] | None:
        import jedi  # on the first completion, outside the deadline

        line, column = line_and_column(code, cursor)
        started = time.monotonic()
        done: list[Match] = []
        completed = False

        code, bound = cell_imports(code, cursor)
        namespace = {**self.namespace, **bound} if bound else self.namespace

        def run() -> None:
            nonlocal completed
            completions = jedi.Interpreter(code, [namespace]).complete(line, column, fuzzy=False)
            for c in completions:
                done.append(Match(cursor - c.get_completion_prefix_length(), c.name_with_symbols, c.type))
            completed = True
            budget = started + timeout * SIGNATURE_SHARE
            owner = _owner(code, done[0].start, namespace) if done else None
            for c, m in zip(completions[:MAX_SIGNATURES], done, strict=False):
                if time.monotonic() > budget:
                    break
                if c.type in ("function", "class"):
                    live = _live_signature(owner, m.text, namespace) if owner is not None else None
                    m.signature = live if live is not None else _signature_text(c)

        try:
            call_with_deadline(run, timeout)
        except DeadlineExceeded:
            if not completed:
                raise
        return done

    # -- magics ----------------------------------------------------------------

    def _magic_matches(self, code: str, cursor: int) -> list[Match] | None:
        """Matches for ``%name`` or ``%%name`` at the start of the cursor's line, else None."""
        line_start = max(code.rfind("\n", 0, cursor), code.rfind("\r", 0, cursor)) + 1
        m = _MAGIC_LINE.match(code, line_start, cursor)
        if m is None or m.end() != cursor:
            return None
        registry = self.magics() if self.magics is not None else None
        if registry is None:
            return []
        try:
            line_names, cell_names = registry.names()
        except Exception:
            return []
        prefix, partial = m.group(1), m.group(2)
        start = m.start(1)
        candidates: list[tuple[str, str]] = [("%%" + n.lstrip("%"), "magic") for n in sorted(cell_names)]
        if prefix == "%":
            candidates = [("%" + n.lstrip("%"), "magic") for n in sorted(line_names)] + candidates
        typed = prefix + partial
        return [Match(start, text, kind) for text, kind in candidates if text.startswith(typed)]

    # -- the namespace fallback --------------------------------------------------

    def _fallback_matches(self, code: str, cursor: int) -> list[Match]:
        line_start = max(code.rfind("\n", 0, cursor), code.rfind("\r", 0, cursor)) + 1
        line = code[line_start:cursor].rsplit(";", 1)[-1]  # the statement the cursor is in
        imported = self._import_matches(line, cursor)
        if imported is not None:
            return imported
        m = _DOTTED_TAIL.search(line)
        assert m is not None  # the pattern matches the empty string at the end
        partial = m.group(2) or ""
        dotted = re.sub(r"\s+", "", m.group(1)).rstrip(".")
        start = cursor - len(partial)
        if line[: m.start()].rstrip().endswith("."):
            return []  # an attribute of f(), "s", 1 or the like: evaluating it would run code
        if dotted:
            found, obj = resolve_dotted(dotted, {**self.namespace, **cell_imports(code[:cursor], cursor)[1]})
            if not found:
                return []
            return _named(start, partial, _attribute_names(obj), lambda n: _kind(_attribute(obj, n)))
        names = [*self.namespace, *dir(builtins)]
        kinds: dict[str, str] = dict.fromkeys(keyword.kwlist, "keyword")

        def kind(name: str) -> str:
            if name in kinds:
                return kinds[name]
            value = self.namespace[name] if name in self.namespace else getattr(builtins, name, None)
            return _kind(value)

        return _named(start, partial, [*names, *keyword.kwlist], kind)

    def _import_matches(self, line: str, cursor: int) -> list[Match] | None:
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
                cursor - len(partial), partial, names, lambda n: _kind(_attribute(module, n), "module")
            )
        return None


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


def _named(start: int, partial: str, names: Iterable[str], kind: Callable[[str], str]) -> list[Match]:
    folded = partial.lower()  # case-insensitive, as jedi is
    chosen = sorted({n for n in names if n.lower().startswith(folded) and n.isidentifier()}, key=_order)
    if not partial.startswith("_"):
        chosen = [n for n in chosen if not n.startswith("_")]
    return [Match(start, n, kind(n)) for n in chosen]


def _order(name: str) -> tuple[bool, str, str]:
    return (name.startswith("__"), name.lower(), name)


def _attribute_names(obj: Any) -> list[str]:
    try:
        return list(dir(obj))
    except Exception:
        return []


def _attribute(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:  # a property or module __getattr__ may raise anything
        return None


def _kind(value: Any, default: str = "instance") -> str:
    if value is None:
        return default
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    if callable(value):
        return "function"
    return "instance"


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
