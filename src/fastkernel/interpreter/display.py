"""The display API (``display``, ``update_display``, ``clear_output``) on a publisher hook.

The interpreter knows no messages: it builds message content and hands it to the publisher
the kernel installs with :func:`set_publisher`, as ``(msg_type, content, target)`` where
``target`` is the output target of the caller (see :func:`~fastkernel.interpreter.streams.output_target`).
The kernel installs its publisher at start; ``display`` is also a builtin in cells.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastkernel.interpreter.formatting import format_object
from fastkernel.interpreter.streams import output_target

Publisher = Callable[[str, dict[str, Any], Any], None]

_publisher: Publisher | None = None


def set_publisher(publisher: Publisher | None) -> None:
    """Install the hook that sends display messages (None: display sends nothing)."""
    global _publisher
    _publisher = publisher


def _publish(msg_type: str, content: dict[str, Any]) -> None:
    if _publisher is not None:
        _publisher(msg_type, content, output_target())


def _bundle(obj: Any, include: Any, exclude: Any, raw: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    if raw:
        return dict(obj), {}
    data, md = format_object(obj)
    if include is not None:
        data = {k: v for k, v in data.items() if k in include or k == "text/plain"}
    if exclude is not None:
        data = {k: v for k, v in data.items() if k not in exclude or k == "text/plain"}
    return data, md


class DisplayHandle:
    """A display that can be shown again or updated in place."""

    def __init__(self, display_id: str | None = None) -> None:
        self.display_id = display_id or os.urandom(16).hex()  # uuid4-like; uuid is not imported at start

    def __repr__(self) -> str:
        return f"<DisplayHandle display_id={self.display_id}>"

    def display(self, obj: Any, **kwargs: Any) -> None:
        """Show ``obj`` with this handle's display id."""
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj: Any, **kwargs: Any) -> None:
        """Replace every output shown with this handle's display id by ``obj``."""
        update_display(obj, display_id=self.display_id, **kwargs)


def display(
    *objs: Any,
    include: Any = None,
    exclude: Any = None,
    metadata: dict[str, Any] | None = None,
    transient: dict[str, Any] | None = None,
    display_id: str | bool | None = None,
    raw: bool = False,
    clear: bool = False,
    update: bool = False,
) -> DisplayHandle | None:
    """Publish each of ``objs`` as ``display_data`` (``update_display_data`` with ``update``)."""
    handle = None
    if display_id is True:
        handle = DisplayHandle()
        display_id = handle.display_id
    elif isinstance(display_id, str):
        handle = DisplayHandle(display_id)
    if clear:
        clear_output(wait=True)
    tr = dict(transient or {})
    if display_id:
        tr["display_id"] = display_id
    for obj in objs:
        data, md = _bundle(obj, include, exclude, raw)
        md.update(metadata or {})
        _publish(
            "update_display_data" if update else "display_data",
            {"data": data, "metadata": md, "transient": tr},
        )
    return handle


def update_display(obj: Any, *, display_id: str, **kwargs: Any) -> None:
    """Update the outputs shown with ``display_id``."""
    display(obj, display_id=display_id, update=True, **kwargs)


def clear_output(wait: bool = False) -> None:
    """Clear the cell's output (at the next output if ``wait``)."""
    _publish("clear_output", {"wait": bool(wait)})
