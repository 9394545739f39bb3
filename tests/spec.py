"""Validation of every message the tests receive, against the Jupyter message spec.

Builds on jupyter_kernel_test's schemas (protocol 5.x) and adds the message types they
lack (``iopub_welcome`` from protocol 5.5, comm messages).
"""

from __future__ import annotations

from typing import Any

from jupyter_kernel_test import msgspec_v5
from jupyter_kernel_test.msgspec_v5 import validate_message as _validate

msgspec_v5.schema_fragments.setdefault("iopub_welcome", {"properties": {"subscription": {"type": "string"}}})
msgspec_v5.schema_fragments.setdefault(
    "comm_open",
    {
        "properties": {
            "comm_id": {"type": "string"},
            "target_name": {"type": "string"},
            "data": {"type": "object"},
        },
        "required": ["comm_id", "target_name", "data"],
    },
)
msgspec_v5.schema_fragments.setdefault(
    "comm_msg",
    {"properties": {"comm_id": {"type": "string"}, "data": {"type": "object"}}},
)
msgspec_v5.schema_fragments.setdefault(
    "comm_close",
    {"properties": {"comm_id": {"type": "string"}, "data": {"type": "object"}}, "required": ["comm_id"]},
)

# messaging.rst defines input_request's `password` as a bool; jupyter_kernel_test's schema
# says "number", which no kernel sends (ipykernel sends a bool too).
msgspec_v5.schema_fragments["input_request"] = {
    "properties": {"prompt": {"type": "string"}, "password": {"type": "boolean"}},
    "required": ["prompt", "password"],
}

# Subshells (JEP 91) and usage_request (jupyter-resource-usage), which the schemas predate.
msgspec_v5.schema_fragments.setdefault(
    "create_subshell_reply",
    {"properties": {"subshell_id": {"type": "string"}}, "required": ["subshell_id"]},
)
msgspec_v5.schema_fragments.setdefault("delete_subshell_reply", {"properties": {}})
msgspec_v5.schema_fragments.setdefault(
    "list_subshell_reply",
    {
        "properties": {"subshell_id": {"type": "array", "items": {"type": "string"}}},
        "required": ["subshell_id"],
    },
)
msgspec_v5.schema_fragments.setdefault(
    "usage_reply",
    {
        "properties": {
            "hostname": {"type": "string"},
            "pid": {"type": "integer"},
            "cpu_count": {"type": "integer"},
            "kernel_cpu": {"type": "number"},
            "kernel_memory": {"type": "integer"},
            "host_cpu_percent": {"type": "number"},
            "host_virtual_memory": {"type": "object"},
        },
        "required": ["hostname", "pid", "cpu_count"],
    },
)

# The debugger (JEP 47, protocol 5.5): the content of each is a Debug Adapter Protocol message.
_DAP_SEQ = {"type": "integer", "minimum": 0}
msgspec_v5.schema_fragments.setdefault(
    "debug_request",
    {
        "properties": {
            "type": {"enum": ["request"]},
            "seq": _DAP_SEQ,
            "command": {"type": "string"},
            "arguments": {"type": "object"},
        },
        "required": ["type", "seq", "command"],
        "additionalProperties": True,
    },
)
msgspec_v5.schema_fragments.setdefault(
    "debug_reply",
    {
        "properties": {
            "type": {"enum": ["response"]},
            "seq": _DAP_SEQ,
            "request_seq": _DAP_SEQ,
            "success": {"type": "boolean"},
            "command": {"type": "string"},
            "message": {"type": "string"},
            "body": {"type": "object"},
        },
        "required": ["type", "seq", "request_seq", "success", "command"],
        "additionalProperties": True,
    },
)
msgspec_v5.schema_fragments.setdefault(
    "debug_event",
    {
        "properties": {
            "type": {"enum": ["event"]},
            "seq": _DAP_SEQ,
            "event": {"type": "string"},
            "body": {"type": "object"},
        },
        "required": ["type", "seq", "event"],
        "additionalProperties": True,
    },
)

PROTOCOL_VERSION = "5.5"


def validate(msg: dict[str, Any], msg_type: str | None = None, parent_id: str | None = None) -> None:
    """Raise if ``msg`` breaks the spec, or is not ``msg_type`` / not a reply to ``parent_id``."""
    _validate(msg, msg_type, parent_id)
    assert msg["header"]["version"] == PROTOCOL_VERSION, msg["header"]
    if parent_id is not None and msg["parent_header"]:
        assert msg["parent_header"]["msg_id"] == parent_id, (msg["parent_header"], parent_id)
