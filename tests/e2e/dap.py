"""A debugger frontend for the tests: DAP requests in debug_request messages, as JupyterLab sends them."""

from __future__ import annotations

from typing import Any

from tests.harness import KernelHarness

DAP_TIMEOUT = 60.0  # the first initialize starts debugpy's adapter (a process)


class DapClient:
    """Sends DAP requests on control and reads their responses and debugpy's events (iopub)."""

    def __init__(self, kernel: KernelHarness) -> None:
        self.kernel = kernel
        self.seq = 0
        self.seen: set[int] = set()  # ids of the debug_event messages already returned

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        """The DAP response to ``command`` (checked to answer this request)."""
        self.seq += 1
        request = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        msg_id = self.kernel.send("debug_request", request, channel="control")
        reply = self.kernel.get_reply(msg_id, "control", timeout=DAP_TIMEOUT)
        content: dict[str, Any] = reply["content"]
        assert content["request_seq"] == self.seq and content["command"] == command, content
        return content

    def ok(self, command: str, **arguments: Any) -> dict[str, Any]:
        """The body of a successful response to ``command``."""
        content = self.request(command, **arguments)
        assert content["success"], content
        body: dict[str, Any] = content.get("body", {})
        return body

    def event(self, name: str) -> dict[str, Any]:
        """The next debug_event ``name`` not returned before (its DAP body)."""
        msg = self.kernel.wait_for_iopub(
            lambda m: (
                m["msg_type"] == "debug_event" and m["content"]["event"] == name and id(m) not in self.seen
            ),
            timeout=DAP_TIMEOUT,
        )
        self.seen.add(id(msg))
        body: dict[str, Any] = msg["content"].get("body", {})
        return body

    def start(self) -> dict[str, Any]:
        """JupyterLab's start: initialize, attach, configurationDone; the debugInfo that follows."""
        capabilities = self.ok(
            "initialize",
            clientID="jupyterlab",
            clientName="JupyterLab",
            adapterID="python",
            pathFormat="path",
            linesStartAt1=True,
            columnsStartAt1=True,
            supportsVariableType=True,
            supportsVariablePaging=True,
            supportsRunInTerminalRequest=False,
            locale="en",
        )
        self.ok("attach")
        self.ok("configurationDone")
        return capabilities

    def breakpoints(self, code: str, *lines: int) -> str:
        """dumpCell ``code``, set breakpoints on ``lines``; the cell's file."""
        path = str(self.ok("dumpCell", code=code)["sourcePath"])
        body = self.ok(
            "setBreakpoints",
            source={"path": path},
            breakpoints=[{"line": line} for line in lines],
            lines=list(lines),
            sourceModified=False,
        )
        assert [b["line"] for b in body["breakpoints"]] == list(lines), body
        assert all(b["verified"] for b in body["breakpoints"]), body
        return path

    def stopped(self) -> tuple[int, list[dict[str, Any]]]:
        """Wait for the next stop; (thread id, its stack frames)."""
        thread = self.event("stopped")["threadId"]
        frames = self.ok("stackTrace", threadId=thread, startFrame=0, levels=20)["stackFrames"]
        return thread, frames

    def locals(self, frame_id: int) -> dict[str, str]:
        """The frame's local variables, name -> value (repr)."""
        scopes = self.ok("scopes", frameId=frame_id)["scopes"]
        reference = next(s["variablesReference"] for s in scopes if s["name"] == "Locals")
        return {
            v["name"]: v["value"] for v in self.ok("variables", variablesReference=reference)["variables"]
        }
