"""One call to a Jupyter server's REST API, for the tests that run a real server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def api_call(
    base_url: str, token: str, method: str, path: str, body: Any = None, timeout: float = 20
) -> tuple[int, Any]:
    """``(status, parsed JSON body)``; for an HTTP error, ``(status, the body's text)``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{base_url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
