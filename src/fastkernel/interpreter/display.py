"""The display API (``display``, ``update_display``, ``clear_output``) and how it is sent.

The interpreter knows no messages: it builds message content and hands it to the display
publisher the kernel gave it (``Interpreter(publish_display=...)``), as ``(msg_type, content,
target)`` where ``target`` is the output target of the caller (see
:func:`~fastkernel.interpreter.streams.output_target`). ``display`` and friends are called by
user code that holds no interpreter: they send through the running one
(:func:`~fastkernel.interpreter.running.current`). Without a running interpreter, or one
without a publisher (no kernel), they send nothing. ``display`` is also a builtin in cells.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter.formatting import format_object
from fastkernel.interpreter.running import current
from fastkernel.interpreter.streams import output_target

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter

# (msg_type, content, target): display_data, update_display_data, clear_output or error
Publisher = Callable[[str, dict[str, Any], Any], None]


def publish(interpreter: Interpreter | None, msg_type: str, content: dict[str, Any]) -> bool:
    """Hand one message to ``interpreter``'s display publisher, for the caller's output target.

    Returns
    -------
    False, having sent nothing, when there is no interpreter or it has no publisher (no kernel).
    """
    publisher = interpreter.publish_display if interpreter is not None else None
    if publisher is None:
        return False
    publisher(msg_type, content, output_target())
    return True


def publish_bundle(
    interpreter: Interpreter | None,
    data: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    transient: dict[str, Any] | None = None,
    update: bool = False,
) -> bool:
    """Send a ready MIME bundle as ``display_data`` (``update_display_data`` with ``update``).

    See :func:`publish` for the interpreter and the return value.
    """
    content = {"data": data, "metadata": dict(metadata or {}), "transient": dict(transient or {})}
    return publish(interpreter, "update_display_data" if update else "display_data", content)


def _merge(into: Any, extra: Any) -> Any:
    """``extra`` merged into ``into``, dicts key by key (``display(metadata=...)`` wins)."""
    if not isinstance(into, dict) or not isinstance(extra, dict):
        return extra
    for key, value in extra.items():
        into[key] = _merge(into.get(key), value)
    return into


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
    """Publish each of ``objs`` as ``display_data`` (``update_display_data`` with ``update``).

    As IPython's ``display``: each object is formatted by the running interpreter's display
    formatter with ``include``/``exclude`` (an object with ``_ipython_display_`` displays
    itself); ``metadata`` is merged into the formatter's; ``raw`` objects are bundles already.
    ``display_id=True`` makes an id; with an id, a :class:`DisplayHandle` is returned.
    """
    if display_id is True:
        display_id = os.urandom(16).hex()  # uuid4-like; uuid is not imported at start
    if update and not display_id:
        raise TypeError("display_id required for update_display")
    tr = dict(transient or {})
    if display_id:
        tr["display_id"] = display_id
    if clear:
        clear_output(wait=True)
    interpreter = current()
    for obj in objs:
        if raw:
            publish_bundle(interpreter, dict(obj), metadata, tr, update)
            continue
        data, md = format_object(obj, include, exclude)
        if not data:  # nothing to show: the object displayed itself (_ipython_display_)
            continue
        if metadata:
            md = _merge(md, metadata)
        publish_bundle(interpreter, data, md, tr, update)
    return DisplayHandle(display_id) if display_id else None


def update_display(obj: Any, *, display_id: str, **kwargs: Any) -> None:
    """Update the outputs shown with ``display_id``."""
    display(obj, display_id=display_id, update=True, **kwargs)


def clear_output(wait: bool = False) -> None:
    """Clear the cell's output (at the next output if ``wait``)."""
    publish(current(), "clear_output", {"wait": bool(wait)})
