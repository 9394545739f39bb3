"""Control requests that need neither the runtime nor the dispatcher's state: subshells,
resource usage, and the visual debugger's ``debug_request`` (with kernel_info's debugger flag)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastkernel.interfaces import Outlet
from fastkernel.messages import Message, error_content
from fastkernel.requests import Reply, field

if TYPE_CHECKING:
    from fastkernel.debugger import Debugger
    from fastkernel.interpreter.core import Interpreter


def create_subshell(outlet: Outlet, msg: Message) -> Reply:
    return Reply({"status": "ok", "subshell_id": outlet.create_subshell()})


def delete_subshell(outlet: Outlet, msg: Message) -> Reply:
    subshell_id = field(msg, "subshell_id", str)
    try:
        outlet.delete_subshell(subshell_id)
    except KeyError:
        return Reply(error_content("SubshellNotFound", f"there is no subshell {subshell_id!r}"))
    return Reply({"status": "ok"})


def list_subshells(outlet: Outlet, msg: Message) -> Reply:
    return Reply({"status": "ok", "subshell_id": outlet.list_subshells()})


def usage(msg: Message) -> Reply:
    from fastkernel.usage import usage_content

    return Reply(usage_content())


def debugpy_importable() -> bool:
    """Whether debugpy can be imported, found without importing it (nor importlib.util: this
    runs for the first kernel_info_request, before the runtime)."""
    if "debugpy" in sys.modules:
        return sys.modules["debugpy"] is not None
    from importlib.machinery import PathFinder

    return PathFinder.find_spec("debugpy") is not None


class DebugRequests:
    """``debug_request`` (control thread): the :class:`~fastkernel.debugger.Debugger` is made by
    the first one, so nothing of it (nor debugpy) is imported while the debugger is off."""

    def __init__(
        self,
        outlet: Outlet,
        publish_event: Callable[[dict[str, Any], Message | None], None],
        interpreter: Callable[[], Interpreter | None],
    ) -> None:
        self.outlet = outlet
        self.publish_event = publish_event
        self.interpreter = interpreter
        self._debugger: Debugger | None = None
        self._debugpy_found: bool | None = None
        self._parent: Message | None = None  # debugpy's events are published as its children

    def available(self) -> bool:
        """Whether debugpy is there (looked for once, not imported): kernel_info's ``debugger``."""
        if self._debugpy_found is None:
            self._debugpy_found = debugpy_importable()
        return self._debugpy_found

    def handle(self, msg: Message) -> Reply:
        """A DAP request for the visual debugger; the reply is DAP's response."""
        if self._debugger is None:
            from fastkernel.debugger import Debugger

            self._debugger = Debugger(
                self.outlet, lambda event: self.publish_event(event, self._parent), self.interpreter
            )
        content = msg["content"]
        if not isinstance(content, dict):  # answered in DAP's shape too: frontends read only that
            content = {"type": "not a request", "seq": 0, "command": ""}
        self._parent = msg
        return Reply(self._debugger.handle(content))

    def close(self) -> None:
        if self._debugger is not None:
            self._debugger.close()
