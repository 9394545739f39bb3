"""Tab completion for ``complete_request``: jedi on the live namespace, bounded in time.

:class:`Completer` asks ``jedi.Interpreter`` about the cell's code and the user namespace
(attributes, module names in imports, keyword arguments, dictionary keys, file paths in
strings, names the cell defines earlier). jedi is imported on the first completion, not at
kernel start. Magics (``%ti``) are completed from ``interpreter.magics`` when it exists.

Cursor positions are Unicode code points (protocol 5.2), which is what ``str`` indexes and
what jedi's columns count, so converting is a matter of counting lines the way parso splits
them (``\\n``, ``\\r\\n`` and ``\\r``).

**Bounded latency.** jedi runs on the main thread under a deadline
(:func:`~fastkernel.interpreter.deadline.call_with_deadline`): ``timeout``, default 0.5 s, or
the ``FASTKERNEL_COMPLETION_TIMEOUT`` environment variable. When the time is up, or when jedi
raises, the namespace completer (:mod:`fastkernel.interpreter.namecompletion`) answers
instead. Names are looked up in the live namespace by attribute access only
(:mod:`fastkernel.interpreter.livenames`): nothing the user wrote is called.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

from fastkernel.interpreter.deadline import DeadlineExceeded, call_with_deadline
from fastkernel.interpreter.livenames import GLOBAL, cell_imports, dotted_owner, get_attribute, resolve_dotted
from fastkernel.interpreter.namecompletion import Match, namespace_matches

DEFAULT_TIMEOUT = 0.5
TIMEOUT_ENV = "FASTKERNEL_COMPLETION_TIMEOUT"
# Signatures (for the types metadata) are looked up only while this share of the budget is left.
SIGNATURE_SHARE = 0.5
MAX_SIGNATURES = 100

Content = dict[str, Any]

_MAGIC_LINE = re.compile(r"[ \t]*(%%?)(\w*)")  # matched from the line's start


def completion_timeout() -> float:
    """The deadline for jedi in seconds, from ``FASTKERNEL_COMPLETION_TIMEOUT`` or the default."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


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


def _live_signature(owner: Any, name: str, namespace: dict[str, Any]) -> str | None:
    """The signature of the live ``owner.name`` (or global ``name``), or None to ask jedi."""
    import inspect

    if owner is GLOBAL:
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
        value = get_attribute(owner, name)
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
            return namespace_matches(self.namespace, code, cursor)

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
            owner = dotted_owner(code, done[0].start, namespace) if done else None
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
