"""A fastkernel process driven through jupyter_client, every message validated against the spec.

:class:`KernelHarness` wraps a kernel from tests.kernels.start_kernel and a client of it; it
sends requests and collects, per request, the reply and the iopub messages from busy to idle
(:class:`Execution`). :func:`merge_streams` is how tests turn stream messages into text.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.session import DELIM

from tests.kernels import TIMEOUT, KernelProcess, start_kernel
from tests.spec import validate


def merge_streams(messages: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """The stream output among ``messages`` as (name, text), consecutive messages of one
    stream joined, as a frontend shows it; other messages are skipped."""
    merged: list[tuple[str, str]] = []
    for msg in messages:
        if msg["msg_type"] != "stream":
            continue
        name, text = msg["content"]["name"], msg["content"]["text"]
        if merged and merged[-1][0] == name:
            merged[-1] = (name, merged[-1][1] + text)
        else:
            merged.append((name, text))
    return merged


def stream_text(messages: Iterable[dict[str, Any]], name: str = "stdout") -> str:
    """All the text of stream ``name`` among ``messages``."""
    return "".join(text for stream, text in merge_streams(messages) if stream == name)


@dataclass
class Execution:
    """A request's reply and the iopub messages parented to it, busy to idle."""

    reply: dict[str, Any]
    iopub: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> dict[str, Any]:
        return self.reply["content"]

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.iopub if m["msg_type"] == msg_type]

    def stream_text(self, name: str = "stdout") -> str:
        return stream_text(self.iopub, name)

    @property
    def types(self) -> list[str]:
        return [m["msg_type"] for m in self.iopub]


def _is_idle(msg: dict[str, Any]) -> bool:
    return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"


class KernelHarness:
    """A kernel and a client of it: sends requests, collects replies and iopub messages per request.

    Every message read is validated against the spec (the client's own ``get_*_msg`` too), a
    reply with ``get_reply``'s ``check`` instead when a test expects one the spec does not know.
    """

    def __init__(self, process: KernelProcess) -> None:
        self.process = process  # raw access: pid, popen, interrupt(), restart(), stderr...
        self.kc = process.client()
        self.stray: list[dict[str, Any]] = []  # iopub messages for other requests

    @classmethod
    def start(cls, *argv: str, **options: Any) -> KernelHarness:
        """A kernel from ``start_kernel(*argv, **options)``, once it answers; see tests.kernels."""
        return cls.connect(start_kernel(*argv, **options))

    @classmethod
    def connect(cls, process: KernelProcess) -> KernelHarness:
        """A harness on a started kernel, once it answers, its iopub drained."""
        try:
            harness = cls(process)
            harness.kc.wait_for_ready(timeout=TIMEOUT)
        except BaseException:
            process.close()
            raise
        harness.drain_iopub()
        return harness

    def __enter__(self) -> KernelHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_client(self, **channels: bool) -> BlockingKernelClient:
        """Another started client of this kernel, with a Session (so zmq identities) of its own.

        Not one sharing ``self.kc``'s Session: its shell and control sockets would carry
        ``self.kc``'s identity and, with the kernel's ROUTER_HANDOVER, take over its replies.
        ``channels``: start_channels' arguments.
        """
        return self.process.client(**channels)

    def close(self) -> None:
        """Stop the clients, shut the kernel down (or reap it, if a test already did)."""
        self.process.close()

    def wait_for_exit(self, timeout: float = 10) -> int:
        """Wait for the kernel process to exit by itself; return its exit code."""
        return self.process.wait(timeout=timeout)

    def drain_iopub(self, timeout: float = 0.2) -> list[dict[str, Any]]:
        msgs = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                return msgs
            msgs.append(msg)

    def get_reply(
        self,
        msg_id: str,
        channel: str = "shell",
        timeout: float = TIMEOUT,
        check: Callable[..., None] = validate,
    ) -> dict[str, Any]:
        """The reply to ``msg_id`` on ``channel``; ``check(msg, parent_id=...)`` validates it."""
        get = self.kc.shell_channel.get_msg if channel == "shell" else self.kc.control_channel.get_msg
        deadline = time.monotonic() + timeout
        while True:
            msg = get(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                check(msg, parent_id=msg_id)
                return msg
            validate(msg)

    def send(self, msg_type: str, content: Any, channel: str = "shell") -> str:
        """Send a request without waiting; ``content`` may be any JSON value. Return its msg_id."""
        msg = self.kc.session.msg(msg_type, {})
        if not isinstance(content, dict):
            msg["content"] = json.dumps(content).encode()  # Session.serialize sends bytes as they are
        else:
            msg["content"] = content
        getattr(self.kc, f"{channel}_channel").send(msg)
        return msg["header"]["msg_id"]

    def send_frames(
        self,
        msg_type: str,
        channel: str = "shell",
        *,
        content: bytes = b"{}",
        parent_header: bytes = b"{}",
        metadata: bytes = b"{}",
    ) -> str:
        """Send a correctly signed request whose JSON frames are the given raw bytes."""
        session = self.kc.session
        header = session.msg_header(msg_type)
        json_frames = [session.pack(header), parent_header, metadata, content]
        frames = [DELIM, session.sign(json_frames), *json_frames]
        getattr(self.kc, f"{channel}_channel").socket.send_multipart(frames)
        return header["msg_id"]

    def wait_for_iopub(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """The first iopub message that satisfies ``predicate``.

        Every message read (the match included) is kept in ``stray``, so a later
        ``collect_iopub`` still sees all messages of its request.
        """
        deadline = time.monotonic() + timeout
        for msg in self.stray:
            if predicate(msg):
                return msg
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            self.stray.append(msg)
            if predicate(msg):
                return msg

    def collect_iopub(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """iopub messages parented to ``msg_id``, from busy up to and including idle."""
        deadline = time.monotonic() + timeout
        msgs = [m for m in self.stray if m["parent_header"].get("msg_id") == msg_id]
        self.stray = [m for m in self.stray if m["parent_header"].get("msg_id") != msg_id]
        if msgs and _is_idle(msgs[-1]):
            assert msgs[0]["msg_type"] == "status", msgs
            assert msgs[0]["content"]["execution_state"] == "busy", msgs
            return msgs
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                self.stray.append(msg)
                continue
            msgs.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                assert msgs[0]["msg_type"] == "status", msgs
                assert msgs[0]["content"]["execution_state"] == "busy", msgs
                return msgs

    def request(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> Execution:
        msg = self.kc.session.msg(msg_type, content)
        getattr(self.kc, f"{channel}_channel").send(msg)
        msg_id = msg["header"]["msg_id"]
        reply = self.get_reply(msg_id, channel)
        return Execution(reply, self.collect_iopub(msg_id))

    def execute(self, code: str, **content: Any) -> Execution:
        msg_id = self.kc.execute(code, **content)
        reply = self.get_reply(msg_id)
        validate(reply, "execute_reply", msg_id)
        return Execution(reply, self.collect_iopub(msg_id))


def ok(kernel: KernelHarness, code: str) -> Execution:
    """Run ``code``; fail the test unless it ran without error."""
    ex = kernel.execute(code)
    assert ex.content["status"] == "ok", ex.content
    return ex


def result(ex: Execution) -> str:
    """The text/plain of the cell's one execute_result."""
    (shown,) = ex.of_type("execute_result")
    return str(shown["content"]["data"]["text/plain"])
