"""Messages as the core sees them: the message type, ids and dates, JSON packing, header
construction, and builders for reply contents. The wire layer (wire.py) signs and frames them."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from fastkernel import PROTOCOL_VERSION, __version__

Message = dict[str, Any]


def _json_default(obj: Any) -> Any:
    """Make the few non-JSON types that message content may carry serializable."""
    if hasattr(obj, "isoformat"):  # datetime, date, time
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


def _clean_floats(obj: Any, _active: set[int] | None = None) -> Any:
    """Replace NaN and infinities (invalid JSON) with None, recursively.

    Sets and tuples become lists, as JSON has them anyway. A container that holds itself
    raises ValueError, as ``json.dumps`` does, rather than recursing until RecursionError.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if not isinstance(obj, (dict, list, tuple, set, frozenset)):
        return obj
    active = set() if _active is None else _active
    if id(obj) in active:
        raise ValueError("Circular reference detected")
    active.add(id(obj))
    try:
        if isinstance(obj, dict):
            return {k: _clean_floats(v, active) for k, v in obj.items()}
        return [_clean_floats(v, active) for v in obj]
    finally:
        active.discard(id(obj))


def _clean_default(obj: Any) -> Any:
    """``_json_default`` whose result has no NaN either (a set of floats, say)."""
    return _clean_floats(_json_default(obj))


def _dumps(obj: Any, default: Callable[[Any], Any], allow_nan: bool, ensure_ascii: bool) -> str:
    return json.dumps(
        obj, default=default, ensure_ascii=ensure_ascii, allow_nan=allow_nan, separators=(",", ":")
    )


# The common case reuses one encoder: json.dumps with options builds a new one per call.
_FAST_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)


def pack(obj: Any) -> bytes:
    """Serialize ``obj`` as compact UTF-8 JSON that every Jupyter client can parse.

    NaN and infinities become null, and the result is always valid UTF-8: lone surrogates
    (undecodable file names reach Python that way) are written as ``\\udcxx`` escapes.
    """
    if not obj and isinstance(obj, dict):
        return b"{}"  # most metadata and many parent headers
    default, allow_nan = _json_default, False
    try:
        text = _FAST_ENCODER.encode(obj)
    except ValueError:  # NaN or infinity somewhere (or a circular structure, raised again below)
        # Every value is cleaned; allow_nan only lets a NaN dict key through, as the string "NaN".
        obj, default, allow_nan = _clean_floats(obj), _clean_default, True
        text = _dumps(obj, default, allow_nan, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(obj, default, allow_nan, ensure_ascii=True).encode("ascii")


def utcnow_iso() -> str:
    """The current UTC time in ISO 8601 with microseconds, as headers carry it.

    Built with ``time`` rather than ``datetime``: cheaper per message and at import.
    """
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    if seconds != _second_cache[0]:  # strftime once per second, not once per message
        _second_cache[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second_cache[1]}.{micros:06d}Z"


_second_cache: list[Any] = [None, ""]


def new_msg_id() -> str:
    """A random 128-bit id in hex, like ``uuid4().hex`` without importing uuid."""
    return os.urandom(16).hex()


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

    def welcome(self, topic: str) -> Message:
        """The iopub_welcome a new iopub subscription gets (JEP 65)."""
        return self.msg("iopub_welcome", {"subscription": topic})

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


def kernel_info_content(supported_features: list[str], debugger: bool = False) -> dict[str, Any]:
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
        "debugger": debugger,
        "supported_features": supported_features,
    }
