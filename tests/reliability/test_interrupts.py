"""Interrupts, both ways a frontend sends them, against every kind of wait a cell can be in.

- signal mode (kernelspec ``interrupt_mode: signal``): SIGINT to the kernel's process group,
  as jupyter_client sends it;
- message mode: ``interrupt_request`` on control, answered by ``interrupt_reply``.

Each interrupt must end the cell with a KeyboardInterrupt error (the tests wait up to 5 s for
it, where the wait itself would last 30 s or for ever) and leave no child process behind; an
interrupt storm must lose no reply; an interrupt while idle must change nothing. How fast an
interrupt takes effect is measured by benchmarks/interrupts.py (and printed here, ``-s``).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.harness import TIMEOUT, KernelHarness
from tests.kernels import pid_alive
from tests.spec import validate

MODES = ["signal", "message"]
BOUND_S = 5.0  # how long an interrupted cell may take to end, else the interrupt was missed

# (name, code, allow_stdin). Each cell prints "started" before it begins to wait.
WAITS = [
    ("sleep", "import time\nprint('started', flush=True)\ntime.sleep(30)", False),
    ("busy loop", "print('started', flush=True)\nwhile True:\n    pass", False),
    ("input", "print('started', flush=True)\ninput('waiting> ')", True),
    ("shell escape", "print('started', flush=True)\n!sleep 30", False),
    ("subprocess", "import subprocess\nprint('started', flush=True)\nsubprocess.run(['sleep', '30'])", False),
]


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    with KernelHarness.start() as harness:
        yield harness


def interrupt(kernel: KernelHarness, mode: str) -> str | None:
    """Interrupt as a frontend does in ``mode``; the interrupt_request's msg_id in message mode."""
    if mode == "signal":
        kernel.process.interrupt()  # SIGINT to its process group, as jupyter_client sends it
        return None
    return kernel.send("interrupt_request", {}, channel="control")


def check_interrupt_reply(kernel: KernelHarness, msg_id: str | None) -> None:
    if msg_id is None:
        return
    reply = kernel.get_reply(msg_id, channel="control", timeout=TIMEOUT)
    validate(reply, "interrupt_reply", msg_id)
    assert reply["content"] == {"status": "ok"}


def _ppids() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(entry)] = int(fields[1])
    return out


def live_descendants(pid: int) -> set[int]:
    """Processes (not zombies) under ``pid``."""
    parents = _ppids()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if pid_alive(pid)}


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling /proc, which has no notification


def assert_kernel_works(kernel: KernelHarness) -> None:
    ex = kernel.execute("import time\ntime.sleep(0.05)\n1 + 1")
    assert ex.content["status"] == "ok", ex.content
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "2"
    assert ex.of_type("error") == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "code", "allow_stdin"), WAITS, ids=[w[0] for w in WAITS])
def test_interrupt_ends_the_wait_with_keyboard_interrupt(
    kernel: KernelHarness, mode: str, name: str, code: str, allow_stdin: bool
) -> None:
    msg_id = kernel.kc.execute(code, allow_stdin=allow_stdin)
    kernel.wait_for_iopub(
        lambda m: m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream", timeout=TIMEOUT
    )
    children: set[int] = set()
    if name == "input":
        request = kernel.kc.get_stdin_msg(timeout=TIMEOUT)
        validate(request, "input_request")
    elif name in ("shell escape", "subprocess"):
        pid = kernel.process.pid
        children = wait_until(lambda: live_descendants(pid), TIMEOUT, "the cell's child process")
    since = time.monotonic()
    interrupt_id = interrupt(kernel, mode)
    reply = kernel.get_reply(msg_id, timeout=BOUND_S)  # ended by the interrupt, not by itself
    print(f"interrupt latency {name} ({mode} mode): {(time.monotonic() - since) * 1000:.0f} ms")
    validate(reply, "execute_reply", msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    check_interrupt_reply(kernel, interrupt_id)
    iopub = kernel.collect_iopub(msg_id)
    errors = [m for m in iopub if m["msg_type"] == "error"]
    assert [e["content"]["ename"] for e in errors] == ["KeyboardInterrupt"]
    # No child outlives the interrupt (a shell escape's grandchildren included).
    wait_until(lambda: not alive(children), BOUND_S, f"children {children} to end")
    assert_kernel_works(kernel)


@pytest.mark.parametrize("mode", MODES)
def test_interrupt_while_idle_is_a_no_op(kernel: KernelHarness, mode: str) -> None:
    for _ in range(5):
        check_interrupt_reply(kernel, interrupt(kernel, mode))
    # The next cells run to their end: no interrupt was kept for later.
    for _ in range(3):
        assert_kernel_works(kernel)
    assert [m for m in kernel.stray if m["msg_type"] == "error"] == []


def cell(rng: random.Random) -> str:
    """A short cell of random kind and duration (0 to 20 ms)."""
    seconds = round(rng.uniform(0, 0.02), 4)
    return rng.choice(
        [
            f"import time\ntime.sleep({seconds})",
            f"import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < {seconds}:\n    pass",
            f"import time\nfor i in range(5):\n    print(i)\n    time.sleep({seconds / 5})",
            "1 + 1",
            "pass",
        ]
    )


@dataclass
class Storm:
    """What a storm sent: its execute_requests, and its interrupts (the interrupt_requests in
    message mode, a count of signals in signal mode)."""

    ids: list[str] = field(default_factory=list)
    interrupt_ids: list[str] = field(default_factory=list)
    signals: int = 0


def send_storm(kernel: KernelHarness, mode: str, n: int, rng: random.Random) -> Storm:
    """``n`` short cells, interrupts at random moments between them."""
    storm = Storm()
    for _ in range(n):
        storm.ids.append(kernel.kc.execute(cell(rng), stop_on_error=rng.random() < 0.5))
        if rng.random() < 0.4:
            time.sleep(rng.uniform(0, 0.02))  # a random moment: not a wait for any condition
            interrupt_id = interrupt(kernel, mode)
            if interrupt_id is None:
                storm.signals += 1
            else:
                storm.interrupt_ids.append(interrupt_id)
    return storm


def storm_replies(kernel: KernelHarness, storm: Storm, marker: str) -> dict[str, dict[str, Any]]:
    """The execute_reply to each request of ``storm``: one each, none to anything else, all
    before the reply to ``marker``, a request sent after them."""
    replies: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while True:
        msg = kernel.kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        parent = msg["parent_header"].get("msg_id")
        if parent == marker:
            validate(msg, "kernel_info_reply", marker)
            break
        validate(msg, "execute_reply", parent)
        assert parent in storm.ids, f"a reply to a request never sent: {parent}"
        assert parent not in replies, f"two replies to {parent}"
        replies[parent] = msg
    missing = [i for i in storm.ids if i not in replies]
    assert not missing, f"{len(missing)} of {len(storm.ids)} execute_requests got no reply"
    return replies


def storm_outcomes(storm: Storm, replies: dict[str, dict[str, Any]]) -> Counter[str]:
    """How many replies had each outcome (ok, KeyboardInterrupt, ExecutionAborted: no other)."""
    outcomes: Counter[str] = Counter()
    for msg_id in storm.ids:
        content = replies[msg_id]["content"]
        outcome = "ok" if content["status"] == "ok" else content.get("ename", content["status"])
        assert outcome in ("ok", "KeyboardInterrupt", "ExecutionAborted"), content
        outcomes[outcome] += 1
    return outcomes


def check_storm_iopub(
    kernel: KernelHarness,
    storm: Storm,
    replies: dict[str, dict[str, Any]],
    marker: str,
    outcomes: Counter[str],
) -> None:
    """iopub: busy and idle once per request; an error message exactly for interrupted cells."""
    states: Counter[tuple[str, str]] = Counter()
    errors: Counter[str] = Counter()
    kernel.wait_for_iopub(
        lambda m: (
            m["parent_header"].get("msg_id") == marker
            and m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
        ),
        timeout=TIMEOUT,
    )
    for msg in kernel.stray:
        parent = msg["parent_header"].get("msg_id")
        if msg["msg_type"] == "status":
            states[(parent, msg["content"]["execution_state"])] += 1
        elif msg["msg_type"] == "error":
            errors[parent] += 1
    kernel.stray.clear()
    for msg_id in storm.ids:
        assert states[(msg_id, "busy")] == 1 and states[(msg_id, "idle")] == 1, msg_id
        interrupted = replies[msg_id]["content"].get("ename") == "KeyboardInterrupt"
        assert errors[msg_id] == (1 if interrupted else 0), (msg_id, replies[msg_id]["content"])
    assert sum(errors[i] for i in storm.ids) == outcomes["KeyboardInterrupt"]


def run_storm(kernel: KernelHarness, mode: str, n: int, seed: int) -> Counter[str]:
    """``n`` short cells, interrupts at random moments; check every request's answer.

    Returns how many replies had each outcome (ok, KeyboardInterrupt, ExecutionAborted).
    """
    storm = send_storm(kernel, mode, n, random.Random(seed))
    # A request sent after all the others: its reply comes after theirs on shell.
    marker = kernel.send("kernel_info_request", {})
    replies = storm_replies(kernel, storm, marker)
    outcomes = storm_outcomes(storm, replies)
    for interrupt_id in storm.interrupt_ids:
        check_interrupt_reply(kernel, interrupt_id)
    check_storm_iopub(kernel, storm, replies, marker, outcomes)
    interrupts = storm.signals or len(storm.interrupt_ids)
    print(f"storm ({mode} mode, {n} cells, {interrupts} interrupts): {dict(outcomes)}")
    return outcomes


@pytest.mark.parametrize("mode", MODES)
def test_interrupt_storm_loses_no_reply(kernel: KernelHarness, mode: str) -> None:
    outcomes = run_storm(kernel, mode, n=200, seed=MODES.index(mode))
    assert outcomes["ok"] > 0
    assert_kernel_works(kernel)


@pytest.mark.stress
@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", MODES)
def test_interrupt_storm_loses_no_reply_stress(kernel: KernelHarness, mode: str) -> None:
    for seed in range(10):
        run_storm(kernel, mode, n=200, seed=100 + seed)
        assert_kernel_works(kernel)


# -- the SIGINT handler itself (transport.server.InterruptGate), in this process ----------


@pytest.fixture
def gate() -> Iterator[Any]:
    import signal

    from fastkernel.transport.interrupts import InterruptGate

    gate = InterruptGate()
    previous = signal.signal(signal.SIGINT, gate.on_sigint)
    yield gate
    signal.signal(signal.SIGINT, previous)


def test_gate_interrupts_user_code_only(gate: Any) -> None:
    import signal

    signal.raise_signal(signal.SIGINT)  # idle: nothing happens
    gate.executing = lambda: True
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_gate_holds_an_interrupt_until_the_shield_is_left(gate: Any) -> None:
    import signal

    gate.executing = lambda: True
    steps = []
    with pytest.raises(KeyboardInterrupt), gate.shielded():
        signal.raise_signal(signal.SIGINT)
        steps.append("after the signal")  # the shielded code runs to its end
        with gate.shielded():  # nested shields: raised by the outermost only
            steps.append("nested")
        steps.append("end of shield")
    assert steps == ["after the signal", "nested", "end of shield"]


def test_gate_drops_a_held_interrupt_when_the_cell_has_ended(gate: Any) -> None:
    import signal

    running = [True]
    gate.executing = lambda: running[0]
    with gate.shielded():
        signal.raise_signal(signal.SIGINT)
        running[0] = False
    with gate.shielded():  # and it is not raised by a later shield either
        running[0] = True
    running[0] = True
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_gate_shields_nothing_off_the_main_thread(gate: Any) -> None:
    """Only the main thread gets SIGINT: a shield elsewhere must not hold the main thread's."""
    import signal
    import threading

    gate.executing = lambda: True
    entered = threading.Event()
    leave = threading.Event()

    def other() -> None:
        with gate.shielded():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        leave.set()
        thread.join(10)
