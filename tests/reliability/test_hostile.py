"""Hostile input: forged, replayed, oversized and malformed traffic, client churn, unsafe set-ups.

Every test starts its own kernel process (tests.kernels, ``python -m fastkernel -f FILE``) with
its stderr in a file, so that log lines can be counted, and talks to it over raw zmq sockets,
so that it can send what no well-behaved client would. The tests assert behaviour (every forged
message rejected and counted, other clients answered, memory and file descriptors bounded);
RSS and file descriptor figures are printed (``-s``). Timings (rejection rate, latencies, CPU
per forged message) are measured by benchmarks/hostile.py (``python benchmarks/run.py --hostile``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.connect import write_connection_file
from jupyter_kernel_test.msgspec_v5 import get_error_reply_validator, msg_structure_validator

from fastkernel.transport.connection import ConnectionInfo, reachable_from_network
from tests.kernels import KernelProcess, Kernels, NewConnectionFile, read_ports
from tests.spec import validate

DELIM = b"<IDS|MSG>"
TIMEOUT = 20.0
PAGE = os.sysconf("SC_PAGE_SIZE")


def _wait_until(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


class Peer:
    """One DEALER on one kernel channel: sends signed (or forged) requests, reads replies."""

    def __init__(self, ctx: zmq.Context, address: str, key: bytes) -> None:
        self.key = key
        self.session = uuid.uuid4().hex
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.reconnect_ivl = 10
        self.sock.connect(address)
        self.replies: dict[str, list[dict[str, Any]]] = {}  # parent msg_id -> replies

    def close(self) -> None:
        self.sock.close(linger=0)

    def sign(self, parts: list[bytes]) -> bytes:
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def frames(self, msg_type: str, content: Any = None, *, forged: bool = False) -> tuple[str, list[bytes]]:
        """The frames of a request (signed, or with a random well-formed digest); its msg_id."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "hostile-test",
            "session": self.session,
            "date": "2026-01-01T00:00:00.000000Z",
            "version": "5.4",
        }
        parts = [
            json.dumps(header).encode(),
            b"{}",
            b"{}",
            json.dumps({} if content is None else content).encode(),
        ]
        signature = secrets.token_hex(32).encode() if forged else self.sign(parts)
        return msg_id, [DELIM, signature, *parts]

    def send(self, msg_type: str, content: Any = None) -> str:
        msg_id, frames = self.frames(msg_type, content)
        self.sock.send_multipart(frames)
        return msg_id

    def receive(self, timeout: float) -> bool:
        """Read one message if one comes within ``timeout`` seconds; file it under its parent."""
        if not self.sock.poll(int(timeout * 1000)):
            return False
        frames = self.sock.recv_multipart()
        i = frames.index(DELIM)
        header, parent, metadata, content = (json.loads(f) for f in frames[i + 2 : i + 6])
        assert hmac.compare_digest(frames[i + 1], self.sign(frames[i + 2 : i + 6])), "badly signed reply"
        reply = {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": parent,
            "metadata": metadata,
            "content": content,
            "buffers": frames[i + 6 :],
        }
        self.replies.setdefault(parent.get("msg_id", ""), []).append(reply)
        return True

    def reply_to(self, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while msg_id not in self.replies:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no reply to {msg_id} within {timeout} s")
            self.receive(left)
        return self.replies[msg_id][0]

    def request(self, msg_type: str, content: Any = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.reply_to(self.send(msg_type, content), timeout)


class Kernel:
    """A kernel process (tests.kernels, its stderr in a log file) and raw zmq peers of it."""

    def __init__(self, process: KernelProcess) -> None:
        self.process = process
        self.info = read_ports(process.connection_file) if process.connection_file else None
        self.key = self.info["key"].encode() if self.info else b""
        self.ctx = zmq.Context()
        self.peers: list[Peer] = []

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.process.popen

    @property
    def stderr(self) -> str:
        return self.process.stderr

    def address(self, channel: str) -> str:
        assert self.info is not None
        return f"tcp://127.0.0.1:{self.info[f'{channel}_port']}"

    def peer(self, channel: str = "shell") -> Peer:
        peer = Peer(self.ctx, self.address(channel), self.key)
        self.peers.append(peer)
        return peer

    def ready(self) -> Peer:
        """Wait for the kernel to answer kernel_info on shell; return that shell peer."""
        shell = self.peer("shell")
        msg_id = shell.send("kernel_info_request")
        deadline = time.monotonic() + TIMEOUT
        while msg_id not in shell.replies:
            if self.proc.poll() is not None:
                pytest.fail(f"kernel exited ({self.proc.returncode}):\n{self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"kernel did not answer kernel_info:\n{self.stderr}")
            shell.receive(0.1)
        return shell

    def _stat(self) -> list[str]:
        return Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()

    def rss(self) -> int:
        return int(self._stat()[21]) * PAGE

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> str:
        """Shut the kernel down politely (so it logs its last summary); return its stderr."""
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                control = self.peer("control")
                control.request("shutdown_request", {"restart": False}, timeout=10)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.close()
        return self.stderr

    def close(self) -> None:
        """Close the peers (and monitors a failed test left open)."""
        for peer in self.peers:
            peer.close()
        self.peers.clear()
        self.ctx.destroy(linger=0)


@pytest.fixture
def start(kernels: Kernels) -> Iterator[Callable[..., Kernel]]:
    """Start a kernel (``ip``, ``mode``: of its connection file, as jupyter_client writes it)."""
    started: list[Kernel] = []

    def launch(*args: str, ip: str = "127.0.0.1", mode: int = 0o600) -> Kernel:
        connection = NewConnectionFile(ip=ip, mode=mode)
        kernel = Kernel(kernels.start(*args, connection=connection, log=True))
        started.append(kernel)
        return kernel

    yield launch
    for kernel in started:
        kernel.close()


def _flood(peer: Peer, count: int, msg_type: str = "execute_request") -> threading.Thread:
    """Send ``count`` forged requests from ``peer`` on a thread (started); the caller joins it."""
    template = [peer.frames(msg_type, {"code": "import os; os._exit(1)"}, forged=True)[1] for _ in range(64)]

    def run() -> None:
        for i in range(count):
            frames = list(template[i % 64])
            frames[1] = secrets.token_hex(32).encode()  # a fresh well-formed digest each time
            peer.sock.send_multipart(frames)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _rejected_totals(stderr: str) -> dict[str, int]:
    """The totals of the kernel's last 'rejected N message(s)' summary line."""
    lines = [line for line in stderr.splitlines() if "rejected" in line and "totals by reason" in line]
    assert lines, stderr
    totals = lines[-1].split("totals by reason: ", 1)[1]
    return {k: int(v) for k, v in json.loads(totals.replace("'", '"')).items()}


# -- forged floods -------------------------------------------------------------------


FORGED = 10_000
REJECTED = re.compile(r"rejected (\d+) message\(s\)")  # the kernel's line about rejections


def _forged_flood(start: Callable[..., Kernel], count: int) -> None:
    kernel = start()
    kernel.ready()
    shell, control, forger = kernel.peer("shell"), kernel.peer("control"), kernel.peer("shell")
    flood = _flood(forger, count)
    answered = {"shell": 0, "control": 0}
    while flood.is_alive() or min(answered.values()) < 20:  # other clients go on being answered
        for name, peer in (("shell", shell), ("control", control)):
            reply = peer.request("kernel_info_request", timeout=10)
            assert reply["content"]["status"] == "ok"
            answered[name] += 1
    flood.join()
    # The forger's own valid request is answered after all of its forgeries were handled.
    assert forger.request("kernel_info_request", timeout=60)["content"]["status"] == "ok"
    assert kernel.proc.poll() is None, "a forged execute_request ran"
    stderr = kernel.stop()
    assert kernel.proc.returncode == 0, stderr
    totals = _rejected_totals(stderr)
    assert totals == {"shell:bad_signature": count}, totals
    assert len(forger.replies) == 1, "a forged request was answered"
    _assert_rejections_are_logged_in_summaries(stderr, count)
    assert "Traceback" not in stderr


def _assert_rejections_are_logged_in_summaries(stderr: str, count: int) -> None:
    """The first rejection is logged at once; later ones in summary lines (at most one per 5 s,
    and one at shutdown) which, together, count every rejection once: far fewer lines than
    forged messages, and nothing else logged about them."""
    lines = stderr.splitlines()
    reported = [int(found.group(1)) for line in lines if (found := REJECTED.search(line))]
    assert reported[0] == 1, reported
    assert sum(reported) == count, reported
    assert len(reported) * 100 <= count, reported
    assert len(lines) - len(reported) < 10, stderr


def test_forged_flood_is_rejected_while_other_clients_are_answered(
    start: Callable[..., Kernel],
) -> None:
    _forged_flood(start, FORGED)


@pytest.mark.stress
def test_forged_flood_stress(start: Callable[..., Kernel]) -> None:
    _forged_flood(start, 10 * FORGED)


# -- replays -------------------------------------------------------------------------


def _replay_after_forgeries(start: Callable[..., Kernel], forged: int, *args: str) -> None:
    kernel = start(*args)
    shell = kernel.ready()
    msg_id, frames = shell.frames("kernel_info_request")
    shell.sock.send_multipart(frames)
    assert shell.reply_to(msg_id)["content"]["status"] == "ok"
    forger = kernel.peer("shell")
    _flood(forger, forged, "kernel_info_request").join()
    forger.request("kernel_info_request", timeout=120)  # every forgery has been handled
    shell.sock.send_multipart(frames)  # the replay
    marker = shell.request("kernel_info_request")  # answered after the replay was handled
    assert marker["content"]["status"] == "ok"
    assert len(shell.replies[msg_id]) == 1, "the replayed request was answered"
    stderr = kernel.stop()
    assert _rejected_totals(stderr) == {"shell:bad_signature": forged, "shell:replayed": 1}


def test_replay_is_refused_after_more_forgeries_than_the_replay_memory_holds(
    start: Callable[..., Kernel],
) -> None:
    # The same property as the stress test below at a tenth of the cost: the forgeries
    # outnumber the remembered digests 3 to 1, so had they entered the memory, it would
    # have forgotten the real message.
    _replay_after_forgeries(start, 3000, "--replay-history=1000")


@pytest.mark.stress
def test_replay_is_refused_after_100k_forgeries(start: Callable[..., Kernel]) -> None:
    _replay_after_forgeries(start, 100_000)


def test_a_message_accepted_on_control_is_refused_when_replayed_on_shell(
    start: Callable[..., Kernel],
) -> None:
    kernel = start()
    shell = kernel.ready()
    control = kernel.peer("control")
    msg_id, frames = control.frames("kernel_info_request")
    control.sock.send_multipart(frames)
    control.reply_to(msg_id)
    shell.sock.send_multipart(frames)
    shell.request("kernel_info_request")
    assert msg_id not in shell.replies
    assert _rejected_totals(kernel.stop()) == {"shell:replayed": 1}


# -- oversized messages ----------------------------------------------------------------


def test_oversized_messages_drop_the_peer_without_growing_memory(start: Callable[..., Kernel]) -> None:
    cap = 1 << 20
    kernel = start(f"--max-message-bytes={cap}")
    shell = kernel.ready()
    shell.request("execute_request", {"code": "x = 1"})
    rss_before = kernel.rss()
    big = b"x" * (8 * cap)
    for _ in range(8):  # 64 MiB offered in all
        sock = kernel.ctx.socket(zmq.DEALER)
        sock.linger = 0
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        sock.connect(kernel.address("shell"))
        _wait_until(lambda m=monitor: _event(m) == zmq.EVENT_CONNECTED, "the connection")
        _, frames = shell.frames("execute_request", {"code": "x = 2"})
        sock.send_multipart([*frames, big])
        _wait_until(lambda m=monitor: _event(m) == zmq.EVENT_DISCONNECTED, "the kernel to drop the peer")
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)
    reply = shell.request("execute_request", {"code": "", "user_expressions": {"x": "x"}})
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["user_expressions"]["x"]["data"]["text/plain"] == "1", "an oversized request ran"
    assert kernel.peer("control").request("kernel_info_request")["content"]["status"] == "ok"
    grown = kernel.rss() - rss_before
    print(f"\n8 messages of 8 MiB over a 1 MiB cap: kernel RSS grew {grown / 2**20:.1f} MiB")
    assert grown < 16 * 2**20, grown
    assert kernel.stop().count("Traceback") == 0


def _event(monitor: zmq.Socket) -> int | None:
    if not monitor.poll(100):
        return None
    frames = monitor.recv_multipart()
    return int.from_bytes(frames[0][:2], "little")


# -- unsafe set-ups: refused or warned about ------------------------------------------


def test_connection_files_written_by_jupyter_client_are_private(tmp_path: Path) -> None:
    path, _ = write_connection_file(str(tmp_path / "k.json"), key=b"k")
    assert os.stat(path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o620, 0o604], ids=oct)
def test_connection_file_open_to_other_users_is_refused(start: Callable[..., Kernel], mode: int) -> None:
    kernel = start(mode=mode)
    assert kernel.proc.wait(timeout=TIMEOUT) == 2
    stderr = kernel.stderr
    assert "refusing to start" in stderr and "other users" in stderr, stderr
    assert "chmod 600" in stderr and "--allow-insecure" in stderr, stderr


def test_connection_file_open_to_other_users_with_allow_insecure(start: Callable[..., Kernel]) -> None:
    kernel = start("--allow-insecure", mode=0o644)
    kernel.ready()
    stderr = kernel.stop()
    assert "WARNING" in stderr and "open to other users" in stderr, stderr


def test_binding_beyond_loopback_warns_that_traffic_is_not_encrypted(start: Callable[..., Kernel]) -> None:
    kernel = start(ip="0.0.0.0")
    kernel.ready()
    warning = [line for line in kernel.stop().splitlines() if "0.0.0.0" in line]
    assert warning and "WARNING" in warning[0] and "NOT encrypted" in warning[0], kernel.stderr
    assert "transport_encryption='required'" in warning[0], "the warning names no remedy"


@pytest.mark.parametrize(
    ("transport", "ip", "exposed"),
    [
        ("tcp", "127.0.0.1", False),
        ("tcp", "127.1.2.3", False),
        ("tcp", "localhost", False),
        ("tcp", "::1", False),
        ("tcp", "0.0.0.0", True),
        ("tcp", "*", True),
        ("tcp", "192.168.1.5", True),
        ("tcp", "::", True),
        ("ipc", "kernel-ipc", False),
    ],
)
def test_which_addresses_count_as_reachable_from_the_network(transport: str, ip: str, exposed: bool) -> None:
    assert reachable_from_network(ConnectionInfo(transport=transport, ip=ip)) is exposed


def test_loopback_binding_logs_no_warning(start: Callable[..., Kernel]) -> None:
    kernel = start()
    kernel.ready()
    assert "WARNING" not in kernel.stop()


# -- fuzzed content: one reply each ------------------------------------------------------

VALUES: list[Any] = [None, True, False, 0, -1, 2**70, 1.5, "", "x", [], [1, "a"], {}, {"k": [None]}]
FIELDS: dict[str, dict[str, Any]] = {
    "execute_request": {
        "code": "1",
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": False,
    },
    "inspect_request": {"code": "len", "cursor_pos": 3, "detail_level": 0},
    "complete_request": {"code": "le", "cursor_pos": 2},
    "history_request": {
        "output": False,
        "raw": True,
        "hist_access_type": "tail",
        "session": 0,
        "start": 0,
        "stop": 10,
        "n": 5,
        "pattern": "*",
        "unique": False,
    },
    "is_complete_request": {"code": "x = 1"},
    "comm_info_request": {"target_name": "t"},
    "kernel_info_request": {},
    "connect_request": {},
}
CONTROL_FIELDS: dict[str, dict[str, Any]] = {
    "kernel_info_request": {},
    "is_complete_request": {"code": "x = 1"},
    "comm_info_request": {"target_name": "t"},
    "connect_request": {},
    "execute_request": {"code": "1"},  # not served on control: an error reply
}


def _fuzzed(fields: dict[str, dict[str, Any]], rng: random.Random, mixed: int) -> list[tuple[str, Any]]:
    """Every field of every request type set to every kind of JSON value; whole contents of
    every type; then ``mixed`` requests with every field random at once."""
    cases: list[tuple[str, Any]] = []
    for msg_type, base in fields.items():
        for name in base:
            cases.extend((msg_type, {**base, name: value}) for value in VALUES)
        cases.extend((msg_type, value) for value in VALUES if not isinstance(value, dict))
        cases.append((msg_type, {**base, "unexpected": [1, {"x": None}]}))
    types = list(fields)
    for _ in range(mixed):
        msg_type = rng.choice(types)
        names = [*fields[msg_type], "extra"]
        cases.append((msg_type, {name: rng.choice(VALUES) for name in names if rng.random() < 0.8}))
    return cases


def _every_request_answered_once(kernel: Kernel, channel: str, cases: list[tuple[str, Any]]) -> None:
    peer = kernel.peer(channel)
    sent = [peer.send(msg_type, content) for msg_type, content in cases]
    for msg_id in sent:
        peer.reply_to(msg_id, timeout=60)
    marker = peer.request("kernel_info_request")
    assert marker["content"]["status"] == "ok"
    extra = {k: len(v) for k, v in peer.replies.items() if len(v) != 1}
    assert not extra, f"requests answered more than once: {extra}"
    unknown = set(peer.replies) - set(sent) - {marker["parent_header"]["msg_id"]}
    assert not unknown, unknown
    for (msg_type, content), msg_id in zip(cases, sent, strict=True):
        reply = peer.replies[msg_id][0]
        try:
            if reply["content"].get("status") == "error":  # the schema of error replies
                msg_structure_validator.validate(reply)
                get_error_reply_validator(5).validate(reply["content"])
                assert reply["header"]["msg_type"] == msg_type.replace("_request", "_reply")
            else:
                validate(reply, msg_type.replace("_request", "_reply"), msg_id)
        except Exception as err:
            raise AssertionError(f"{msg_type} {content!r}: invalid reply {reply}") from err
    print(f"\n{len(cases)} fuzzed requests on {channel}: one reply each")


def test_fuzzed_requests_each_get_exactly_one_reply(start: Callable[..., Kernel]) -> None:
    kernel = start()
    shell = kernel.ready()
    rng = random.Random(20261130)
    _every_request_answered_once(kernel, "shell", _fuzzed(FIELDS, rng, mixed=100))
    _every_request_answered_once(kernel, "control", _fuzzed(CONTROL_FIELDS, rng, mixed=30))
    reply = shell.request("execute_request", {"code": "21 * 2", "stop_on_error": True})
    assert reply["content"]["status"] == "ok"
    assert kernel.peer("control").request("kernel_info_request")["content"]["status"] == "ok"
    stderr = kernel.stop()
    assert kernel.proc.returncode == 0, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr


# -- connect-send-close churn -------------------------------------------------------------


def _churn(start: Callable[..., Kernel], clients: int, batch: int = 50) -> None:
    """Clients connect, send a signed request and either close at once or wait for the reply
    (ipykernel#1554: a reply to a peer that is gone must not leave the next request unread)."""
    kernel = start()
    shell = kernel.ready()
    count_before = shell.request("execute_request", {"code": "pass"})["content"]["execution_count"]
    fds_before, rss_before = kernel.fds(), kernel.rss()
    ctx = zmq.Context()
    answered = 0
    try:
        for first in range(0, clients, batch):
            waiting: list[tuple[Peer, str]] = []
            for i in range(first, min(first + batch, clients)):
                peer = Peer(ctx, kernel.address("shell"), kernel.key)
                if i % 3 == 0:
                    msg_id = peer.send("execute_request", {"code": f"n = {i}"})
                else:
                    msg_id = peer.send("kernel_info_request")
                if i % 2:
                    waiting.append((peer, msg_id))
                else:
                    peer.sock.close(linger=50)  # gone before the reply (or even the request) arrives
            for peer, msg_id in waiting:
                reply = peer.reply_to(msg_id, timeout=30)
                assert reply["content"]["status"] == "ok", reply
                answered += 1
                peer.close()
    finally:
        ctx.term()
    last = shell.request("execute_request", {"code": "n"})["content"]
    assert last["status"] == "ok"
    executes = len(range(0, clients, 3))
    ran = last["execution_count"] - count_before - 1
    waited_executes = len(range(3, clients, 6))
    # libzmq closes a gone peer's socket asynchronously: wait for the count to settle.
    _wait_until(lambda: kernel.fds() <= fds_before + 8, "the kernel's fds to settle")
    fds = kernel.fds()
    grown = kernel.rss() - rss_before
    print(
        f"\n{clients} churning clients, {answered} waited and were answered; "
        f"{ran - waited_executes} of {executes - waited_executes} requests of clients that left reached it; "
        f"kernel fds {fds_before} -> {fds}, RSS grew {grown / 2**20:.1f} MiB"
    )
    assert answered == clients // 2
    assert ran >= waited_executes
    assert grown < 32 * 2**20, grown
    stderr = kernel.stop()
    assert "Traceback" not in stderr, stderr


def test_connect_send_close_churn_leaves_no_waiting_client_unanswered(start: Callable[..., Kernel]) -> None:
    _churn(start, 1000)


@pytest.mark.stress
def test_connect_send_close_churn_stress(start: Callable[..., Kernel]) -> None:
    _churn(start, 10_000)
