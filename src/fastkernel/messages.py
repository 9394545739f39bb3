"""Message and header construction, and builders for reply contents."""

from __future__ import annotations

import os
import sys
from typing import Any

from fastkernel import PROTOCOL_VERSION, __version__
from fastkernel.wire import Message, new_msg_id, pack, utcnow_iso


def _username() -> str:
    for var in ("LOGNAME", "USER", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # no passwd entry (containers): any name will do
        return "kernel"


class MessageFactory:
    """Builds headers and messages for one kernel session."""

    def __init__(self, session_id: str | None = None) -> None:
        self.session = session_id or new_msg_id()
        self.username = _username()
        # Everything in a header but its id, type and date is fixed for the session, so its JSON
        # is a template filled per message rather than a dict encoded per message.
        fixed = pack({"username": self.username, "session": self.session, "version": PROTOCOL_VERSION})
        self._header_tail = b"," + fixed[1:]

    def header(self, msg_type: str) -> dict[str, Any]:
        return {
            "msg_id": new_msg_id(),
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session,
            "date": utcnow_iso(),
            "version": PROTOCOL_VERSION,
        }

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> Message:
        msg: Message = {
            "header": self.header(msg_type),
            "msg_type": msg_type,
            "parent_header": dict(parent["header"]) if parent else {},
            "metadata": metadata or {},
            "content": content,
            "buffers": buffers or [],
        }
        if parent and "header_frame" in parent:
            msg["parent_frame"] = parent["header_frame"]  # the request's header, already JSON
        msg["header_frame"] = self._header_frame(msg["header"])
        return msg

    def _header_frame(self, header: dict[str, Any]) -> bytes:
        # msg_id and date are hex and ISO digits; msg_type is one of the kernel's own names.
        head = '{{"msg_id":"{}","msg_type":"{}","date":"{}"'.format(
            header["msg_id"], header["msg_type"], header["date"]
        )
        return head.encode("ascii") + self._header_tail


def error_content(ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
    return {"status": "error", "ename": ename, "evalue": evalue, "traceback": traceback or []}


def language_info() -> dict[str, Any]:
    version = ".".join(map(str, sys.version_info[:3]))
    return {
        "name": "python",
        "version": version,
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "pygments_lexer": "ipython3",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "nbconvert_exporter": "python",
    }


def kernel_info_content(supported_features: list[str]) -> dict[str, Any]:
    python = sys.version.split("\n")[0]
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "fastkernel",
        "implementation_version": __version__,
        "language_info": language_info(),
        "banner": f"fastkernel {__version__} (pid {os.getpid()}), Python {python}",
        "help_links": [
            {"text": "Python Reference", "url": "https://docs.python.org/3/"},
            {"text": "Jupyter messaging", "url": "https://jupyter-client.readthedocs.io/"},
        ],
        "debugger": False,
        "supported_features": supported_features,
    }
