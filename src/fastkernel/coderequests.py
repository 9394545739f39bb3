"""Requests about code and history: is_complete, and from the runtime complete, inspect, history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastkernel.messages import Message
from fastkernel.requests import BadRequest, Reply, count_field, field

if TYPE_CHECKING:
    from fastkernel.history import HistoryStore
    from fastkernel.runtime import Runtime


def is_complete(msg: Message) -> Reply:
    """is_complete_request: IPython's rules (no runtime needed)."""
    from fastkernel.interpreter.completeness import is_complete as check

    status, indent = check(field(msg, "code", str))
    return Reply({"status": status, "indent": indent} if status == "incomplete" else {"status": status})


def complete(runtime: Runtime, msg: Message) -> Reply:
    """complete_request: jedi on the live namespace (the completer is made on first use)."""
    code = field(msg, "code", str)
    cursor_pos = field(msg, "cursor_pos", int, len(code))
    if runtime.completer is None:
        from fastkernel.interpreter.completion import Completer

        interpreter = runtime.interpreter
        runtime.completer = Completer(
            interpreter.namespace, magics=lambda: getattr(interpreter, "magics", None)
        )
    return Reply(runtime.completer.reply(code, cursor_pos))


def inspect(runtime: Runtime, msg: Message) -> Reply:
    """inspect_request: what ``obj?`` shows, for the name at the cursor."""
    from fastkernel.interpreter.introspect import inspect_reply

    code = field(msg, "code", str)
    cursor_pos = field(msg, "cursor_pos", int, len(code))
    detail_level = field(msg, "detail_level", int, 0)
    namespace, labels = runtime.interpreter.namespace, runtime.interpreter.labels
    return Reply(inspect_reply(code, cursor_pos, detail_level, namespace, labels))


def history(store: HistoryStore, msg: Message) -> Reply:
    """history_request: tail, range and search over the SQLite history (fastkernel.history)."""
    kind = field(msg, "hist_access_type", str)
    raw = field(msg, "raw", bool, True)
    output = field(msg, "output", bool, False)
    if kind == "tail":
        cells = store.tail(count_field(msg, field(msg, "n", int)), raw, output)
    elif kind == "range":
        stop = field(msg, "stop", (int, type(None)), None)
        session, start = field(msg, "session", int, 0), field(msg, "start", int, 1)
        cells = store.range(session, start, stop, raw, output)
    elif kind == "search":
        pattern, unique = field(msg, "pattern", str), field(msg, "unique", bool, False)
        n = field(msg, "n", (int, type(None)), None)
        cells = store.search(pattern, raw, output, None if n is None else count_field(msg, n), unique)
    else:
        raise BadRequest(f"hist_access_type must be 'tail', 'range' or 'search', got {kind!r}")
    return Reply({"status": "ok", "history": cells})
