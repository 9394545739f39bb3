"""A real fastkernel subprocess driven through jupyter_client, every message validated."""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel

from tests.conftest import KERNEL_NAME
from tests.spec import validate

TIMEOUT = 20


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
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == name)

    @property
    def types(self) -> list[str]:
        return [m["msg_type"] for m in self.iopub]


class KernelHarness:
    """Starts a kernel, sends requests, collects replies and iopub messages per request."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km = km
        self.kc = kc
        self.stray: list[dict[str, Any]] = []  # iopub messages for other requests

    @classmethod
    def start(cls, **kwargs: Any) -> KernelHarness:
        km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=TIMEOUT, **kwargs)
        harness = cls(km, kc)
        harness.drain_iopub()
        return harness

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=False)

    def drain_iopub(self, timeout: float = 0.2) -> list[dict[str, Any]]:
        msgs = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                return msgs
            validate(msg)
            msgs.append(msg)

    def get_reply(self, msg_id: str, channel: str = "shell", timeout: float = TIMEOUT) -> dict[str, Any]:
        get = self.kc.get_shell_msg if channel == "shell" else self.kc.control_channel.get_msg
        deadline = time.monotonic() + timeout
        while True:
            msg = get(timeout=max(0.01, deadline - time.monotonic()))
            validate(msg)
            if msg["parent_header"].get("msg_id") == msg_id:
                validate(msg, parent_id=msg_id)
                return msg

    def collect_iopub(self, msg_id: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """iopub messages parented to ``msg_id``, from busy up to and including idle."""
        deadline = time.monotonic() + timeout
        msgs: list[dict[str, Any]] = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            validate(msg)
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
