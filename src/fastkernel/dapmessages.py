"""DAP messages for the visual debugger (fastkernel/debugger.py): responses, the answers the
kernel gives from the request alone (``source``, ``modules``), and the requests it sends
debugpy in a frontend's stead (``evaluate`` for ``richInspectVariables`` in a stopped frame,
``setExpression`` for ``copyToGlobals``) with the answers made from what debugpy said.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from fastkernel.interpreter.debugcells import loaded_modules

Dap = dict[str, Any]
# The bundle of a variable, computed in a stopped frame by debugpy's evaluate
RICH_EXPRESSION = "__import__('fastkernel.interpreter.debugcells').interpreter.debugcells.bundle_json({name})"


def response(request: Dap, success: bool = True, body: Any = None, message: str | None = None) -> Dap:
    """The DAP response to ``request``; ``message`` says why when it failed."""
    reply: Dap = {
        "type": "response",
        "seq": 0,
        "request_seq": request.get("seq", 0),
        "command": request.get("command", ""),
        "success": success,
        "body": body if body is not None else {},
    }
    if message is not None:
        reply["message"] = message
    return reply


def source_response(request: Dap) -> Dap:
    """``source``: the text of the file at ``arguments.source.path``."""
    path = ((request.get("arguments") or {}).get("source") or {}).get("path")
    if not isinstance(path, str):
        return response(request, False, message="source needs arguments.source.path")
    try:
        with open(path, encoding="utf-8") as file:
            return response(request, body={"content": file.read()})
    except (OSError, UnicodeDecodeError) as err:
        return response(request, False, message=f"source unavailable: {err}")


def modules_response(request: Dap) -> Dap:
    """``modules``: the loaded modules that have a ``.py`` file, paged."""
    arguments = request.get("arguments") or {}
    modules = loaded_modules()
    start = int(arguments.get("startModule", 0) or 0)
    count = int(arguments.get("moduleCount", 0) or 0) or len(modules)
    return response(request, body={"modules": modules[start : start + count], "totalModules": len(modules)})


def exception_filters(request: Dap) -> Dap:
    """``setExceptionBreakpoints`` as debugpy needs it: a cell's uncaught exception is caught by
    the kernel, never uncaught in debugpy's sense, so "uncaught" also asks for debugpy's
    "userUnhandled" (it leaves the user's code)."""
    arguments = dict(request.get("arguments") or {})
    filters = list(arguments.get("filters") or [])
    if "uncaught" in filters and "userUnhandled" not in filters:
        filters.append("userUnhandled")
    arguments["filters"] = filters
    return {**request, "arguments": arguments}


def rich_evaluate(request: Dap, name: str, frame_id: int) -> Dap:
    """The ``evaluate`` request that computes variable ``name``'s bundle in a stopped frame."""
    return {
        "type": "request",
        "command": "evaluate",
        "seq": request.get("seq", 0),
        "arguments": {
            "expression": RICH_EXPRESSION.format(name=name),
            "frameId": frame_id,
            "context": "clipboard",
        },
    }


def rich_response(request: Dap, answer: Dap) -> Dap:
    """``richInspectVariables``' response from debugpy's ``answer`` to :func:`rich_evaluate`."""
    if not answer.get("success"):
        return response(request, False, {"data": {}, "metadata": {}}, answer.get("message"))
    text = answer.get("body", {}).get("result", "")
    try:
        bundle = json.loads(text if text.startswith("{") else ast.literal_eval(text))
    except (ValueError, SyntaxError) as err:
        return response(request, False, {"data": {}, "metadata": {}}, f"unreadable bundle: {err}")
    return response(request, body=bundle)


def copy_to_globals(request: Dap) -> Dap:
    """``copyToGlobals`` as the ``setExpression`` request that does it, or a failed response
    (its ``type``) when the arguments do not name two variables."""
    arguments = request.get("arguments") or {}
    target, source = arguments.get("dstVariableName"), arguments.get("srcVariableName")
    if not (isinstance(target, str) and target.isidentifier() and isinstance(source, str)):
        return response(request, False, message="copyToGlobals needs dstVariableName and srcVariableName")
    return {
        "type": "request",
        "command": "setExpression",
        "seq": request.get("seq", 0),
        "arguments": {
            "expression": f"globals()[{target!r}]",
            "value": source,
            "frameId": arguments.get("srcFrameId"),
        },
    }
