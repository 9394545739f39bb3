"""A small, direct pyzmq client and kernel launcher, used identically for every kernel.

jupyter_client's BlockingKernelClient hands every message through a thread and an asyncio
loop, which at sub-millisecond scales mostly measures the client. This client is one
thread: a DEALER for shell and control, a SUB for iopub, and a ``zmq.Poller`` over them.
Outgoing messages are signed with HMAC-SHA256 as the protocol requires; incoming ones are
parsed only as far as a benchmark needs (header, parent header, and content on demand).

:class:`KernelProcess` launches a kernelspec the way jupyter_client does (``python`` in
argv becomes ``sys.executable``, the spec's env is added, ``JPY_PARENT_PID`` is set, new
session) and is always shut down: by ``shutdown_request``, then SIGTERM, then SIGKILL to
its process group. Every live kernel is tracked, and :func:`shutdown_all` (also run at
exit) stops whatever is left.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.kernelspec import KernelSpec

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"


T = TypeVar("T")


class KernelDied(RuntimeError):
    """The kernel process exited, or did not answer in time."""


class Msg:
    """An incoming message: type and parent id parsed eagerly, content on demand."""

    __slots__ = ("msg_type", "parent_id", "_content", "_frames")

    def __init__(self, frames: list[bytes]) -> None:
        i = frames.index(DELIM)
        self._frames = frames[i + 2 : i + 6]
        self.msg_type: str = json.loads(self._frames[0])["msg_type"]
        parent = json.loads(self._frames[1])
        if not isinstance(parent, dict):  # counted as malformed by pump
            raise ValueError(f"parent_header is {parent!r}, not an object")
        self.parent_id: str | None = parent.get("msg_id")
        self._content: dict[str, Any] | None = None

    @property
    def content(self) -> dict[str, Any]:
        if self._content is None:
            self._content = json.loads(self._frames[3])
        return self._content


class Client:
    """Shell, control and iopub sockets for one kernel, driven from the calling thread."""

    def __init__(self, info: dict[str, Any], ctx: zmq.Context) -> None:
        self.key = info["key"].encode() if isinstance(info["key"], str) else info["key"]
        self.session = uuid.uuid4().hex
        # CurveZMQ keys (transport encryption): the client uses the connection file's pair, as
        # jupyter_client does; None for plain sockets.
        self.curve = info.get("curve_publickey"), info.get("curve_secretkey")
        base = f"{info['transport']}://{info['ip']}:"
        self.shell = self._socket(ctx, zmq.DEALER, base + str(info["shell_port"]))
        self.control = self._socket(ctx, zmq.DEALER, base + str(info["control_port"]))
        self.iopub = self._socket(ctx, zmq.SUB, base + str(info["iopub_port"]))
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.malformed = 0  # messages that could not be parsed (see pump)
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)
        self.poller.register(self.control, zmq.POLLIN)

    def _socket(self, ctx: zmq.Context, kind: int, address: str) -> zmq.Socket:
        sock = ctx.socket(kind)
        public, secret = self.curve
        if public and secret:
            sock.curve_publickey, sock.curve_secretkey = public.encode(), secret.encode()
            sock.curve_serverkey = public.encode()
        sock.linger = 0
        sock.sndhwm = 0
        sock.rcvhwm = 0  # never drop iopub on our side: we want to count every byte
        sock.reconnect_ivl = 2  # ms: the kernel binds late; libzmq's 100 ms default would quantize startup
        sock.connect(address)
        return sock

    def close(self) -> None:
        for sock in (self.shell, self.control, self.iopub):
            sock.close(linger=0)

    # -- sending ---------------------------------------------------------------

    def send(
        self, msg_type: str, content: dict[str, Any], channel: str = "shell", subshell_id: str | None = None
    ) -> str:
        """Sign and send a request (to a subshell, JEP 91, if ``subshell_id``); return its msg_id."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "bench",
            "session": self.session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": PROTOCOL_VERSION,
        }
        if subshell_id is not None:
            header["subshell_id"] = subshell_id
        parts = [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        sock = self.shell if channel == "shell" else self.control
        sock.send_multipart([DELIM, mac.hexdigest().encode(), *parts])
        return msg_id

    def execute(self, code: str, subshell_id: str | None = None) -> str:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        return self.send("execute_request", content, subshell_id=subshell_id)

    # -- receiving -------------------------------------------------------------

    def pump(
        self,
        done: Callable[[], bool],
        on_shell: Callable[[Msg], None] | None = None,
        on_iopub: Callable[[Msg], None] | None = None,
        on_control: Callable[[Msg], None] | None = None,
        timeout: float = 30.0,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        """Receive and hand messages to the callbacks until ``done()``; raise on timeout."""
        handlers = {self.shell: on_shell, self.iopub: on_iopub, self.control: on_control}
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise KernelDied(f"no answer within {timeout:.0f} s")
            events = self.poller.poll(min(left, 0.5) * 1000)
            if not events and alive is not None and not alive():
                raise KernelDied("kernel process exited")
            for sock, _ in events:
                handler = handlers[sock]
                while True:  # drain each ready socket before polling again
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if handler is not None:
                        try:
                            msg = Msg(frames)
                        except (ValueError, KeyError, IndexError):  # a kernel's garbled message
                            self.malformed += 1
                            continue
                        handler(msg)

    def request(self, msg_type: str, content: dict[str, Any], channel: str = "shell", **kw: Any) -> Msg:
        """Send a request and return its reply (iopub traffic meanwhile is discarded)."""
        msg_id = self.send(msg_type, content, channel)
        got: list[Msg] = []

        def on_reply(msg: Msg) -> None:
            if msg.parent_id == msg_id:
                got.append(msg)

        handlers = {"on_shell": on_reply} if channel == "shell" else {"on_control": on_reply}
        self.pump(lambda: bool(got), **handlers, **kw)
        return got[0]


class KernelProcess:
    """One launched kernel with its client. Use as a context manager, or call :meth:`shutdown`."""

    live: set[KernelProcess] = set()

    def __init__(
        self,
        spec: KernelSpec,
        ctx: zmq.Context,
        env: dict[str, str | None] | None = None,
        *,
        curve: bool = False,
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.env_overrides = env or {}  # None removes a variable
        self.tmp = Path(tempfile.mkdtemp(prefix="fk-bench-"))
        public, secret = zmq.curve_keypair() if curve else (None, None)  # as transport_encryption does
        self.connection_file, info = write_connection_file(
            str(self.tmp / "kernel.json"),
            ip="127.0.0.1",
            key=uuid.uuid4().hex.encode(),
            curve_publickey=public,
            curve_secretkey=secret,
        )
        self.info = dict(info)
        self.client = Client(self.info, ctx)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.tmp / "kernel.log"

    def command(self) -> list[str]:
        argv = [a.replace("{connection_file}", self.connection_file) for a in self.spec.argv]
        major, minor = sys.version_info[:2]
        if argv[0] in {"python", f"python{major}", f"python{major}.{minor}"}:
            argv[0] = sys.executable  # as jupyter_client's KernelManager does
        return argv

    def spawn(self) -> None:
        env = os.environ.copy()
        env.update(self.spec.env or {})
        env["JPY_PARENT_PID"] = str(os.getpid())
        for name, value in self.env_overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        KernelProcess.live.add(self)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 60.0) -> float:
        """Spawn and wait for the first kernel_info_reply; return the seconds this took."""
        t0 = time.perf_counter()
        self.spawn()
        try:
            self.client.request("kernel_info_request", {}, timeout=timeout, alive=self.alive)
        except KernelDied as err:
            raise KernelDied(f"{self.spec.display_name}: {err}\n{self.log_tail()}") from None
        return time.perf_counter() - t0

    def wait_for_iopub(self, timeout: float = 30.0) -> None:
        """Make sure our iopub subscription is live: send kernel_info until its status arrives."""
        sent: set[str] = set()
        seen: list[str] = []

        def on_iopub(msg: Msg) -> None:
            if msg.parent_id in sent:
                seen.append(msg.parent_id)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not seen:
            sent.add(self.client.send("kernel_info_request", {}))
            with contextlib.suppress(KernelDied):
                self.client.pump(lambda: bool(seen), on_iopub=on_iopub, timeout=0.25, alive=self.alive)
        if not seen:
            raise KernelDied(f"{self.spec.display_name}: iopub never delivered a message")
        self._drain(0.1)  # the replies and statuses of the other kernel_info requests

    def _drain(self, seconds: float) -> None:
        """Discard whatever arrives in the next ``seconds``."""
        end = time.monotonic() + seconds
        with contextlib.suppress(KernelDied):
            self.client.pump(lambda: time.monotonic() >= end, timeout=seconds + 1)

    def shutdown(self) -> None:
        """Ask politely, then SIGTERM, then SIGKILL the process group; remove temp files."""
        KernelProcess.live.discard(self)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                self.client.request("shutdown_request", {"restart": False}, channel="control", timeout=3)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc is None or proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)  # its own session, so this also stops its children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
        self.client.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> KernelProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def in_fresh_kernel(
    spec: KernelSpec,
    ctx: zmq.Context,
    env: dict[str, str | None],
    measure: Callable[[KernelProcess], T],
    *,
    curve: bool = False,
    wait_for_iopub: bool = True,
) -> T | str:
    """``measure(kp)`` in a fresh kernel of ``spec``, always shut down after; ``"failed: ..."``
    when the kernel dies or does not answer."""
    try:
        with KernelProcess(spec, ctx, env, curve=curve) as kp:
            kp.start()
            if wait_for_iopub:
                kp.wait_for_iopub()
            return measure(kp)
    except (KernelDied, RuntimeError, zmq.ZMQError) as err:
        return f"failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"


def shutdown_all() -> None:
    """Stop every kernel that has not been shut down yet."""
    for kernel in list(KernelProcess.live):
        with contextlib.suppress(Exception):
            kernel.shutdown()


atexit.register(shutdown_all)
