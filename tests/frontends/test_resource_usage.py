"""jupyter-resource-usage reads fastkernel's usage through its HTTP endpoint (usage_request)."""

from __future__ import annotations

import time

import pytest

from tests.frontends.test_server import TIMEOUT, Server, server  # noqa: F401  # the fixture
from tests.kernels import KERNEL_NAME

pytest.importorskip("jupyter_resource_usage")
pytestmark = pytest.mark.timeout(60)


def test_kernel_usage_through_the_extension(server: Server) -> None:  # noqa: F811
    status, kernel = server.request("POST", "/api/kernels", {"name": KERNEL_NAME})
    assert status == 201, kernel
    path = f"/api/metrics/v1/kernel_usage/get_usage/{kernel['id']}"
    deadline = time.monotonic() + TIMEOUT
    while True:  # the server answers once the kernel does; until then it says so
        status, usage = server.request("GET", path)
        assert status == 200, usage
        if "pid" in usage.get("content", {}) or time.monotonic() > deadline:
            break
    content = usage["content"]
    assert usage["msg_type"] == "usage_reply" and usage["kernel_id"] == kernel["id"]
    assert content["hostname"] and content["pid"] > 0 and content["cpu_count"] >= 1
    assert content["kernel_memory"] > 10 * 2**20
    assert content["host_virtual_memory"]["total"] > 0
    assert server.request("DELETE", f"/api/kernels/{kernel['id']}")[0] == 204
