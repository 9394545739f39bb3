"""Checking a request's content, and the reply a handler returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from fastkernel.messages import Message

Content = dict[str, Any]


class BadRequest(Exception):
    """The request's content is not what its message type requires."""


class Reply(NamedTuple):
    content: Content
    metadata: dict[str, Any] | None = None
    # Runs after the reply and the idle status are sent (abort the queue, stop serving).
    then: Callable[[], None] | None = None


def field(msg: Message, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``msg.content[name]`` checked against ``kind``; raise BadRequest naming the problem."""
    content = msg["content"]
    if not isinstance(content, dict):
        raise BadRequest(f"{msg['msg_type']} content must be a JSON object, got {type(content).__name__}")
    if name not in content:
        if default is ...:
            raise BadRequest(f"{msg['msg_type']} content is missing {name!r}")
        return default
    value = content[name]
    if kind is bool and value in (0, 1):
        value = bool(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = getattr(kind, "__name__", str(kind))
        raise BadRequest(f"{msg['msg_type']} field {name!r} must be {expected}, got {type(value).__name__}")
    return value


def count_field(msg: Message, n: Any) -> int:
    """A history_request ``n``: a count of cells, not negative."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise BadRequest(f"{msg['msg_type']} field 'n' must be a non-negative integer, got {n!r}")
    return n
