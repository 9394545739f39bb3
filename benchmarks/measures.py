"""The measurements. Each takes a started kernel and returns plain numbers."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import time
from dataclasses import dataclass
from typing import Any

from client import Client, KernelDied, KernelProcess, Msg

PRINT_CODE = "for i in range({n}):\n    print(i)"
FLUSHED_PRINT_CODE = "for i in range({n}):\n    print(i, flush=True)"


class Waiter:
    """Waits for the execute_reply and the iopub idle of a set of requests."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.replies: dict[str, Msg] = {}
        self.idle: set[str] = set()

    def on_shell(self, msg: Msg) -> None:
        if msg.msg_type == "execute_reply" and msg.parent_id is not None:
            self.replies[msg.parent_id] = msg

    def on_iopub(self, msg: Msg) -> None:
        if (
            msg.msg_type == "status"
            and msg.parent_id is not None
            and msg.content["execution_state"] == "idle"
        ):
            self.idle.add(msg.parent_id)

    def wait(self, msg_ids: list[str], kernel: KernelProcess, timeout: float = 60.0) -> None:
        last = msg_ids[-1]
        want = len(msg_ids)

        def done() -> bool:
            return len(self.replies) >= want and last in self.idle

        self.client.pump(
            done, on_shell=self.on_shell, on_iopub=self.on_iopub, timeout=timeout, alive=kernel.alive
        )
        for msg_id in msg_ids:
            status = self.replies[msg_id].content.get("status")
            if status != "ok":
                raise RuntimeError(f"execute_request answered with status {status!r}")


def execute(kernel: KernelProcess, code: str, timeout: float = 60.0, subshell_id: str | None = None) -> float:
    """Run one cell; return seconds from send to both execute_reply and iopub idle."""
    waiter = Waiter(kernel.client)
    t0 = time.perf_counter()
    msg_id = kernel.client.execute(code, subshell_id)
    waiter.wait([msg_id], kernel, timeout)
    return time.perf_counter() - t0


def round_trips(kernel: KernelProcess, n: int, warmup: int) -> list[float]:
    """Seconds per `pass` round trip, one request in flight at a time."""
    for _ in range(warmup):
        execute(kernel, "pass")
    return [execute(kernel, "pass") for _ in range(n)]


def pipelined(kernel: KernelProcess, n: int) -> float:
    """Send ``n`` executes of `pass` back to back; return executes per second."""
    execute(kernel, "pass")
    waiter = Waiter(kernel.client)
    t0 = time.perf_counter()
    ids = [kernel.client.execute("pass") for _ in range(n)]
    waiter.wait(ids, kernel, timeout=120)
    return n / (time.perf_counter() - t0)


@dataclass
class PrintResult:
    seconds: float
    stdout_bytes: int  # received before the cell's idle
    expected_bytes: int
    exact: bool  # the text received equals the text printed, in order
    messages: int  # stream messages before idle
    late_bytes: int  # stdout bytes that arrived after idle (output after idle is a bug)

    @property
    def complete(self) -> bool:
        return self.exact and self.late_bytes == 0


def big_print(kernel: KernelProcess, lines: int, grace: float = 0.3, flush: bool = False) -> PrintResult:
    """Time `print` of ``lines`` lines and check every byte arrives before idle.

    With ``flush``, every print flushes (``print(i, flush=True)``): a kernel that sends a
    message per flush shows it in the message count.
    """
    client = kernel.client
    expected = "".join(f"{i}\n" for i in range(lines))
    chunks: list[str] = []
    late: list[str] = []
    waiter = Waiter(client)
    msg_id = ""

    def on_iopub(msg: Msg) -> None:
        if msg.parent_id != msg_id:
            return
        if msg.msg_type == "stream" and msg.content.get("name") == "stdout":
            (late if msg_id in waiter.idle else chunks).append(msg.content["text"])
        else:
            waiter.on_iopub(msg)

    t0 = time.perf_counter()
    msg_id = client.execute((FLUSHED_PRINT_CODE if flush else PRINT_CODE).format(n=lines))
    client.pump(
        lambda: msg_id in waiter.replies and msg_id in waiter.idle,
        on_shell=waiter.on_shell,
        on_iopub=on_iopub,
        timeout=300,
        alive=kernel.alive,
    )
    seconds = time.perf_counter() - t0
    end = time.monotonic() + grace
    client.pump(lambda: time.monotonic() >= end, on_iopub=on_iopub, timeout=grace + 1)
    text = "".join(chunks)
    return PrintResult(
        seconds=seconds,
        stdout_bytes=len(text.encode()),
        expected_bytes=len(expected.encode()),
        exact=text == expected,
        messages=len(chunks),
        late_bytes=len("".join(late).encode()),
    )


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def import_profile(log_text: str, own: str = "fastkernel") -> tuple[float, list[tuple[str, float]]]:
    """Attribute ``python -X importtime`` output: (total ms, [(what, ms)], largest first).

    Modules of ``own`` are charged their self time as "own modules"; anything else imported
    once ``own`` has started (by its modules, or lazily at top level) is charged, with all
    that it imports in turn, to its top-level package name. Imports before the first module
    of ``own`` (interpreter start-up, ``-m`` machinery) are charged to "other".
    """
    stack: list[tuple[int, str, int, list[Any]]] = []  # (depth, name, self us, children)
    for line in log_text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        children = []
        while stack and stack[-1][0] > depth:  # post-order: children come first
            children.insert(0, stack.pop())
        stack.append((depth, name.strip(), int(self_us), children))
    nodes = stack

    def cumulative(node: tuple[int, str, int, list[Any]]) -> int:
        return node[2] + sum(cumulative(c) for c in node[3])

    charged: dict[str, float] = {}

    def charge(node: tuple[int, str, int, list[Any]], inside_own: bool) -> None:
        name = node[1]
        if name == own or name.startswith(own + "."):
            charged[f"{own} modules"] = charged.get(f"{own} modules", 0.0) + node[2] / 1000
            for child in node[3]:
                charge(child, True)
        elif inside_own:
            root = name.split(".")[0]
            charged[root] = charged.get(root, 0.0) + cumulative(node) / 1000
        else:
            charged["other"] = charged.get("other", 0.0) + cumulative(node) / 1000

    started = False  # top-level imports before the first own module are interpreter start-up
    for node in nodes:
        started = started or node[1] == own or node[1].startswith(own + ".")
        charge(node, started)
    ranked = sorted(charged.items(), key=lambda item: item[1], reverse=True)
    return sum(charged.values()), ranked


def complete(kernel: KernelProcess, code: str, expect: str, timeout: float = 60.0) -> tuple[float, bool]:
    """One complete_request with the cursor at the end of ``code``.

    Returns (seconds from send until both the reply and the iopub idle arrived, whether
    ``expect`` was among the matches).
    """
    client = kernel.client
    replies: dict[str, Msg] = {}
    idle: set[str] = set()

    def on_shell(msg: Msg) -> None:
        if msg.msg_type == "complete_reply" and msg.parent_id is not None:
            replies[msg.parent_id] = msg

    def on_iopub(msg: Msg) -> None:
        if (
            msg.msg_type == "status"
            and msg.parent_id is not None
            and msg.content["execution_state"] == "idle"
        ):
            idle.add(msg.parent_id)

    t0 = time.perf_counter()
    msg_id = client.send("complete_request", {"code": code, "cursor_pos": len(code)})
    client.pump(
        lambda: msg_id in replies and msg_id in idle,
        on_shell=on_shell,
        on_iopub=on_iopub,
        timeout=timeout,
        alive=kernel.alive,
    )
    seconds = time.perf_counter() - t0
    content = replies[msg_id].content
    if content.get("status") != "ok":
        raise RuntimeError(f"complete_request answered with status {content.get('status')!r}")
    return seconds, expect in content.get("matches", [])


def completions(
    kernel: KernelProcess, setup: str, code: str, expect: str, n: int
) -> tuple[float, list[float], bool]:
    """Run ``setup``, then complete ``code`` once (warm-up) and ``n`` times more.

    Returns the warm-up's time (in a fresh kernel: the first completion, with a cold
    completer), the ``n`` times, and whether every reply had ``expect`` among its matches.
    """
    execute(kernel, setup)
    first, found = complete(kernel, code, expect)
    times = []
    for _ in range(n):
        seconds, ok = complete(kernel, code, expect)
        times.append(seconds)
        found = found and ok
    return first, times, found


# -- interrupts (benchmarks/interrupts.py runs these against every kernel) -------------

INTERRUPT_CELLS = {
    "sleep": "import time\nprint('started', flush=True)\ntime.sleep(30)",
    "busy loop": (
        "import time\nprint('started', flush=True)\nt = time.monotonic()\n"
        "while time.monotonic() - t < 30:\n    pass"
    ),
}


def send_interrupt(kernel: KernelProcess, mode: str) -> None:
    """Interrupt as jupyter_client does: SIGINT to the process group, or interrupt_request."""
    if mode == "signal":
        os.killpg(kernel.pid, signal.SIGINT)  # the kernel leads its own session (see client.py)
    else:
        kernel.client.send("interrupt_request", {}, channel="control")


def interrupt_latency(kernel: KernelProcess, code: str, mode: str, deadline: float = 10.0) -> float | None:
    """Seconds from the interrupt to the execute_reply of a running ``code`` cell.

    The interrupt is sent once the cell's "started" output has arrived. None when the cell was
    not ended by a KeyboardInterrupt within ``deadline`` (the cell then runs out its 30 s).
    """
    client = kernel.client
    state: dict[str, Any] = {"started": False, "reply": None, "idle": False}
    msg_id = ""

    def on_iopub(msg: Msg) -> None:
        if msg.parent_id != msg_id:
            return
        if msg.msg_type == "stream" and "started" in msg.content.get("text", ""):
            state["started"] = True
        elif msg.msg_type == "status" and msg.content["execution_state"] == "idle":
            state["idle"] = True

    def on_shell(msg: Msg) -> None:
        if msg.parent_id == msg_id and msg.msg_type == "execute_reply":
            state["reply"] = msg
            state["at"] = time.perf_counter()

    msg_id = client.execute(code)
    client.pump(lambda: state["started"], on_shell=on_shell, on_iopub=on_iopub, alive=kernel.alive)
    t0 = time.perf_counter()
    send_interrupt(kernel, mode)

    def done() -> bool:
        return state["reply"] is not None and state["idle"]

    client.pump(done, on_shell=on_shell, on_iopub=on_iopub, timeout=60, alive=kernel.alive)
    seconds = state["at"] - t0
    if state["reply"].content.get("ename") != "KeyboardInterrupt" or seconds > deadline:
        return None
    return float(seconds)


STORM_CELLS = [
    "import time\ntime.sleep({s})",
    "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < {s}:\n    pass",
    "import time\nfor i in range(5):\n    print(i)\n    time.sleep({s} / 5)",
    "1 + 1",
]


@dataclass
class StormResult:
    sent: int
    interrupts: int
    lost: int  # execute_requests never answered
    outcomes: dict[str, int]  # reply status or ename -> count
    responsive: bool  # a kernel_info_request on shell answered afterwards


def _storm_cell(rng: Any) -> dict[str, Any]:
    """The content of one storm execute_request: a short random cell (0-20 ms)."""
    return {
        "code": rng.choice(STORM_CELLS).format(s=round(rng.uniform(0, 0.02), 4)),
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": rng.random() < 0.5,
    }


class StormReplies:
    """execute_reply outcomes by parent msg_id: the ename or status, or "malformed reply"."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def on_shell(self, msg: Msg) -> None:
        if msg.msg_type == "execute_reply" and msg.parent_id is not None:
            try:
                content = msg.content
            except ValueError:  # seen from a peer: a reply cut short by the interrupt
                self.outcomes[msg.parent_id] = "malformed reply"
                return
            self.outcomes[msg.parent_id] = content.get("ename") or content.get("status", "?")

    def wait_for(self, kernel: KernelProcess, n: int, quiet: float) -> None:
        """Until ``n`` replies have come, or none came for ``quiet`` seconds."""
        while len(self.outcomes) < n:
            before = len(self.outcomes)
            with contextlib.suppress(KernelDied):
                kernel.client.pump(
                    lambda b=before: len(self.outcomes) > b,
                    on_shell=self.on_shell,
                    timeout=quiet,
                    alive=kernel.alive,
                )
            if len(self.outcomes) == before:
                return


def _send_storm(
    kernel: KernelProcess, mode: str, n: int, rng: Any, replies: StormReplies
) -> tuple[list[str], int]:
    """Send ``n`` storm cells with interrupts at random moments between; (msg_ids, interrupts)."""
    ids = []
    interrupts = 0
    for _ in range(n):
        ids.append(kernel.client.send("execute_request", _storm_cell(rng)))
        if rng.random() < 0.4:
            end = time.monotonic() + rng.uniform(0, 0.02)  # a random moment, replies read meanwhile
            with contextlib.suppress(KernelDied):
                kernel.client.pump(lambda e=end: time.monotonic() >= e, on_shell=replies.on_shell, timeout=1)
            if kernel.alive():
                send_interrupt(kernel, mode)
                interrupts += 1
    return ids, interrupts


def _responsive(kernel: KernelProcess) -> bool:
    """Whether the kernel answers a kernel_info_request on shell within 10 s."""
    if not kernel.alive():
        return False
    with contextlib.suppress(KernelDied):
        kernel.client.request("kernel_info_request", {}, timeout=10, alive=kernel.alive)
        return True
    return False


def interrupt_storm(kernel: KernelProcess, mode: str, n: int, seed: int, quiet: float = 5.0) -> StormResult:
    """``n`` short random cells (0-20 ms), interrupts at random moments between sends.

    Replies are awaited until every request has one or none came for ``quiet`` seconds.
    """
    import random

    replies = StormReplies()
    malformed = kernel.client.malformed
    ids, interrupts = _send_storm(kernel, mode, n, random.Random(seed), replies)
    replies.wait_for(kernel, n, quiet)
    responsive = _responsive(kernel)
    outcomes: dict[str, int] = {}
    for msg_id in ids:
        outcome = replies.outcomes.get(msg_id, "lost")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if kernel.client.malformed > malformed:
        outcomes["malformed reply"] = outcomes.get("malformed reply", 0) + kernel.client.malformed - malformed
    return StormResult(n, interrupts, outcomes.get("lost", 0), outcomes, responsive)
