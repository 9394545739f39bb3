"""fastkernel behind a real ``jupyter server``: REST kernel API plus the channels websocket.

The websocket speaks the server's default (v1, no subprotocol) format: one JSON text frame
per message, with a ``channel`` key beside the Jupyter message fields.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websocket

from tests.frontends.conftest import free_port, frontend_env, wait_pid_gone
from tests.kernels import KERNEL_NAME, pid_alive
from tests.rest import api_call
from tests.spec import validate

TIMEOUT = 20

pytestmark = pytest.mark.timeout(60)

# Keys the server puts on a websocket message beside the spec's own.
SERVER_KEYS = {"channel"}
SPEC_KEYS = {"header", "parent_header", "metadata", "content", "buffers", "msg_id", "msg_type"}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    token: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return api_call(self.base_url, self.token, method, path, body, TIMEOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert self.proc.poll() is None, f"jupyter server exited early:\n{self.log()}"
            try:
                status, _ = self.request("GET", "/api")
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"jupyter server not ready after {TIMEOUT}s:\n{self.log()}"
            time.sleep(0.1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path)


@pytest.fixture
def curve_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose kernels are started with CurveZMQ keys (jupyter_server 2.18+)."""
    yield from _serve(tmp_path, "--MappingKernelManager.transport_encryption=required")


def _serve(tmp_path: Path, *options: str) -> Iterator[Server]:
    srv = start_server(tmp_path, *options)
    try:
        yield srv
    finally:
        stop_server(srv)


def start_server(tmp_path: Path, *options: str, **env: str) -> Server:
    """A ``jupyter server`` on a free loopback port with its own dirs under ``tmp_path``, the
    test kernelspec on JUPYTER_PATH (``env`` adds or overrides variables), ready to serve."""
    root = tmp_path / "root"
    root.mkdir()
    port = free_port()
    token = secrets.token_hex(16)
    full_env = frontend_env(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        **env,
    )
    full_env.pop("JPY_PARENT_PID", None)  # the server names itself its kernels' parent
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.terminals_enabled=False",
                *(["--allow-root"] if os.geteuid() == 0 else []),
                *options,
            ],
            env=full_env,
            cwd=str(root),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    srv = Server(proc, f"http://127.0.0.1:{port}", token, log_path)
    try:
        srv.wait_ready()
    except BaseException:
        stop_server(srv)
        raise
    return srv


def stop_server(srv: Server) -> None:
    """The server's own clean shutdown (SIGINT twice skips its prompt), else kill it."""
    if srv.proc.poll() is None:
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.send_signal(signal.SIGINT)
        try:
            srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait(timeout=10)


def spec_view(ws_msg: dict[str, Any]) -> dict[str, Any]:
    """The Jupyter message inside a websocket message: only the keys the spec knows."""
    unknown = set(ws_msg) - SERVER_KEYS - SPEC_KEYS
    assert not unknown, f"unexpected keys {unknown} in {ws_msg}"
    msg = {k: v for k, v in ws_msg.items() if k in SPEC_KEYS}
    msg.setdefault("buffers", [])
    return msg


class Channels:
    """The kernel's channels websocket; every received message is checked against the spec."""

    def __init__(self, server: Server, kernel_id: str) -> None:
        url = server.base_url.replace("http://", "ws://")
        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"{url}/api/kernels/{kernel_id}/channels?session_id={self.session}&token={server.token}",
            timeout=TIMEOUT,
        )
        self.received: list[dict[str, Any]] = []

    def close(self) -> None:
        self.ws.close()

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "msg_type": msg_type,
                "username": "test",
                "session": self.session,
                "date": "2024-01-01T00:00:00.000000Z",
                "version": "5.4",
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": channel,
            "buffers": [],
        }
        self.ws.send(json.dumps(msg))
        return msg_id

    def recv(self, deadline: float) -> dict[str, Any]:
        self.ws.settimeout(max(0.01, deadline - time.monotonic()))
        frame = self.ws.recv()
        assert isinstance(frame, str), f"expected a JSON text frame, got {type(frame).__name__}"
        ws_msg = json.loads(frame)
        assert ws_msg.get("channel") in {"shell", "iopub", "control", "stdin"}, ws_msg
        msg = spec_view(ws_msg)
        validate(msg)
        self.received.append(ws_msg)
        return ws_msg

    def execute(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run ``code``: its execute_reply and its iopub messages, busy to idle."""
        msg_id = self.send("shell", "execute_request", {"code": code, "silent": False})
        deadline = time.monotonic() + TIMEOUT
        reply = None
        iopub: list[dict[str, Any]] = []
        idle = False
        while reply is None or not idle:
            msg = self.recv(deadline)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            validate(spec_view(msg), parent_id=msg_id)
            if msg["channel"] == "shell":
                assert reply is None, "two replies to one request"
                validate(spec_view(msg), "execute_reply", msg_id)
                reply = msg
            elif msg["channel"] == "iopub":
                assert not idle, f"iopub message after idle: {msg}"
                iopub.append(msg)
                idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        assert iopub[0]["msg_type"] == "status", iopub
        assert iopub[0]["content"]["execution_state"] == "busy", iopub
        return reply, iopub


def test_execute_through_jupyter_server(server: Server) -> None:
    status, specs = server.request("GET", "/api/kernelspecs")
    assert status == 200
    assert KERNEL_NAME in specs["kernelspecs"], sorted(specs["kernelspecs"])

    status, kernel = server.request("POST", "/api/kernels", {"name": KERNEL_NAME})
    assert status == 201, (status, kernel, server.log())
    kernel_id = kernel["id"]
    assert kernel["name"] == KERNEL_NAME
    kernel_pid = None
    channels = Channels(server, kernel_id)
    try:
        reply, iopub = channels.execute("import os; os.getpid()")
        results = [m for m in iopub if m["msg_type"] == "execute_result"]
        kernel_pid = int(results[0]["content"]["data"]["text/plain"])
        assert pid_alive(kernel_pid)

        reply, iopub = channels.execute("print('hi')\n6 * 7")
        assert reply["content"]["status"] == "ok", reply
        types = [m["msg_type"] for m in iopub]
        assert types == ["status", "execute_input", "stream", "execute_result", "status"], types
        assert iopub[2]["content"] == {"name": "stdout", "text": "hi\n"}
        result = iopub[3]["content"]
        assert result["data"]["text/plain"] == "42"
        assert result["execution_count"] == reply["content"]["execution_count"] == 2

        reply, iopub = channels.execute("undefined_name")
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "NameError"
        assert [m["msg_type"] for m in iopub] == ["status", "execute_input", "error", "status"]

        # The server's REST view of the kernel follows the kernel's status messages.
        status, model = server.request("GET", f"/api/kernels/{kernel_id}")
        assert status == 200
        assert model["execution_state"] == "idle", model
    finally:
        channels.close()
        status, body = server.request("DELETE", f"/api/kernels/{kernel_id}")
        if kernel_pid is not None and not wait_pid_gone(kernel_pid, TIMEOUT):
            os.kill(kernel_pid, signal.SIGKILL)
            pytest.fail(f"kernel {kernel_pid} still running after DELETE")
    assert status == 204, (status, body)
    status, kernels = server.request("GET", "/api/kernels")
    assert status == 200
    assert kernels == []


def test_execute_through_jupyter_server_with_transport_encryption(
    curve_server: Server, tmp_path: Path
) -> None:
    status, kernel = curve_server.request("POST", "/api/kernels", {"name": KERNEL_NAME})
    assert status == 201, (status, kernel, curve_server.log())
    kernel_id = kernel["id"]
    (connection_file,) = (tmp_path / "runtime").glob(f"kernel-{kernel_id}.json")
    info = json.loads(connection_file.read_text())
    assert len(info["curve_publickey"]) == len(info["curve_secretkey"]) == 40, "no CurveZMQ keys"
    channels = Channels(curve_server, kernel_id)
    try:
        reply, iopub = channels.execute("print('encrypted')\n6 * 7")
        assert reply["content"]["status"] == "ok", reply
        types = [m["msg_type"] for m in iopub]
        assert types == ["status", "execute_input", "stream", "execute_result", "status"], types
        assert iopub[2]["content"] == {"name": "stdout", "text": "encrypted\n"}
        assert iopub[3]["content"]["data"]["text/plain"] == "42"
        status, model = curve_server.request("GET", f"/api/kernels/{kernel_id}")
        assert status == 200 and model["execution_state"] == "idle", model
    finally:
        channels.close()
        status, body = curve_server.request("DELETE", f"/api/kernels/{kernel_id}")
    assert status == 204, (status, body)
