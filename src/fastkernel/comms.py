"""Comms (comm_open, comm_msg, comm_close, comm_info) on top of the ``comm`` package.

The ``comm`` package lets a kernel replace ``comm.create_comm`` and ``comm.get_comm_manager``.
:func:`install` does so with a :class:`Comm` whose ``publish_msg`` publishes on iopub through the
kernel core, parented to the request whose output target is current (the cell that created the
comm, or the comm message whose callback is running), and with a :class:`Manager` per kernel.

The kernel does not import ``comm`` at start: it installs these with
:func:`fastkernel.interpreter.importhooks.after_import`, so the patch happens when user code (or
a library such as ipywidgets) first imports ``comm``, or when a frontend first sends a comm
message, whichever comes first.
"""

from __future__ import annotations

import traceback
from types import ModuleType
from typing import TYPE_CHECKING, Any

import comm as comm_package
from comm.base_comm import BaseComm, BuffersType, CommManager, MaybeDict

from fastkernel.interpreter.streams import output_to
from fastkernel.logs import log

if TYPE_CHECKING:
    from fastkernel.kernel import Kernel


_kernel: Kernel | None = None
_manager: Manager | None = None


class Comm(BaseComm):
    """A comm whose messages go out on iopub through the fastkernel core."""

    def publish_msg(
        self,
        msg_type: str,
        data: MaybeDict = None,
        metadata: MaybeDict = None,
        buffers: BuffersType = None,
        **keys: Any,
    ) -> None:
        kernel = _kernel
        if kernel is None:  # no kernel (a plain interpreter): nothing to send to
            return
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        kernel.streams.flush()  # prints made before this message stay before it
        frames = [bytes(b) for b in buffers or []]
        kernel.publish(msg_type, content, kernel.current_request(), metadata, frames)

    def handle_msg(self, msg: dict[str, Any]) -> None:
        # BaseComm.handle_msg imports IPython for its events; fastkernel has none.
        if self._msg_callback:
            self._msg_callback(msg)


class Manager(CommManager):
    """The comms and targets of one kernel."""


def _create_comm(*args: Any, **kwargs: Any) -> BaseComm:
    return Comm(*args, **kwargs)


def _get_comm_manager() -> CommManager:
    global _manager
    if _manager is None:
        _manager = Manager()
    return _manager


def install(kernel: Kernel, module: ModuleType | None = None) -> None:
    """Make ``comm.create_comm`` and ``comm.get_comm_manager`` serve ``kernel``."""
    global _kernel, _manager
    _kernel = kernel
    _manager = Manager()
    target = module if module is not None else comm_package
    target.create_comm = _create_comm  # type: ignore[attr-defined]
    target.get_comm_manager = _get_comm_manager  # type: ignore[attr-defined]


def _show_error(kernel: Kernel, what: str) -> None:
    log.warning("error in %s", what, exc_info=True)
    kernel.stderr.write(f"Error in {what}:\n{traceback.format_exc()}")


def handle(kernel: Kernel, msg: dict[str, Any]) -> None:
    """Handle a comm_open, comm_msg or comm_close from a frontend; output goes to ``msg``."""
    parent, kernel.parent = kernel.parent, msg
    try:
        _handle(kernel, msg)
    except Exception:  # a kernel bug must not stop the kernel
        log.exception("error handling %s", msg["msg_type"])
    finally:
        kernel.parent = parent
        kernel.streams.flush()


def _handle(kernel: Kernel, msg: dict[str, Any]) -> None:
    content = msg.get("content")
    comm_id = content.get("comm_id") if isinstance(content, dict) else None
    if not isinstance(comm_id, str):
        log.warning("%s without a comm_id string: ignored", msg["msg_type"])
        return
    assert isinstance(content, dict)
    manager = _get_comm_manager()
    # Under the interpreter's display lock: a handler on a subshell thread waits while the main
    # shell formats an object for display or runs its post_execute hooks (figures drawn).
    with output_to(msg), kernel.interpreter.display_lock:
        if msg["msg_type"] == "comm_open":
            target_name = content.get("target_name")
            comm = Comm(comm_id=comm_id, primary=False, target_name=str(target_name))
            manager.register_comm(comm)
            callback = manager.targets.get(str(target_name))
            if callback is None:
                log.warning("comm_open for unknown target %r: closing comm %s", target_name, comm_id)
                comm.close(data={"error": f"no comm target registered with the name {target_name!r}"})
                return
            try:
                callback(comm, msg)
            except Exception:
                _show_error(kernel, f"comm target {target_name!r}")
                comm.close(data={"error": f"comm target {target_name!r} raised an exception"})
            return
        existing = manager.comms.get(comm_id)
        if existing is None:
            log.warning("%s for unknown comm %s: ignored", msg["msg_type"], comm_id)
            return
        if msg["msg_type"] == "comm_msg":
            try:
                existing.handle_msg(msg)
            except Exception:
                _show_error(kernel, f"comm {comm_id} message callback")
        else:
            existing._closed = True
            manager.comms.pop(comm_id, None)
            try:
                existing.handle_close(msg)
            except Exception:
                _show_error(kernel, f"comm {comm_id} close callback")


def info(target_name: str | None) -> dict[str, dict[str, str]]:
    """The open comms as ``{comm_id: {"target_name": ...}}``, optionally of one target only."""
    if _manager is None:
        return {}
    return {
        comm_id: {"target_name": comm.target_name}
        for comm_id, comm in list(_manager.comms.items())
        if target_name is None or comm.target_name == target_name
    }
