"""CurveZMQ: with keys in the connection file, every socket is a curve server.

A client with the keys (jupyter_client's, as transport_encryption provisions them) works on all
five channels; a client without them gets nothing from any of them, even with the right HMAC
key, and its attempts leave no trace in the kernel's log and no growing memory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session
from zmq.utils.monitor import recv_monitor_message

from tests.harness import Execution, KernelHarness, ok, result, stream_text
from tests.kernels import KERNEL_NAME, TIMEOUT, Kernels, NewConnectionFile, channel_url, read_ports
from tests.spec import validate

pytestmark = pytest.mark.timeout(90)

QUIET_WAIT_MS = 1500  # how long a keyless client listens for anything at all


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def curve_kernel(kernels: Kernels) -> KernelHarness:
    return KernelHarness.connect(kernels.start(connection=NewConnectionFile(curve=True), log=True))


def _keyless(ctx: zmq.Context[Any], info: dict[str, Any], channel: str, kind: int, **options: Any) -> Any:
    sock = ctx.socket(kind)
    sock.linger = 0
    for name, value in options.items():
        sock.setsockopt(getattr(zmq, name.upper()), value)
    sock.connect(channel_url(info, channel))
    return sock


def test_connection_file_with_keys_makes_every_channel_work_for_a_keyed_client(
    curve_kernel: KernelHarness,
) -> None:
    info = read_ports(curve_kernel.process.connection_file)  # type: ignore[arg-type]
    assert info is not None and len(info["curve_publickey"]) == 40
    ex = ok(curve_kernel, "print('over curve')\n6 * 7")
    assert ex.stream_text() == "over curve\n"
    assert result(ex) == "42"
    reply = curve_kernel.request("kernel_info_request", {}, channel="control")
    assert reply.content["status"] == "ok"
    assert curve_kernel.kc.hb_channel.is_beating()
    # stdin: input() reaches the keyed client, and its answer the cell
    msg_id = curve_kernel.kc.execute("answer = input('name? ')\nanswer.upper()", allow_stdin=True)
    request = curve_kernel.kc.get_stdin_msg(timeout=TIMEOUT)
    assert request["content"]["prompt"] == "name? "
    curve_kernel.kc.input("ada")
    reply_msg = curve_kernel.get_reply(msg_id)
    assert reply_msg["content"]["status"] == "ok"
    assert result(Execution(reply_msg, curve_kernel.collect_iopub(msg_id))) == "'ADA'"


def test_keyless_client_gets_nothing_on_any_channel(curve_kernel: KernelHarness) -> None:
    info = read_ports(curve_kernel.process.connection_file)  # type: ignore[arg-type]
    assert info is not None
    session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
    ctx = zmq.Context()
    try:
        shell = _keyless(ctx, info, "shell", zmq.DEALER)
        control = _keyless(ctx, info, "control", zmq.DEALER)
        iopub = _keyless(ctx, info, "iopub", zmq.SUB, subscribe=b"")
        hb = _keyless(ctx, info, "hb", zmq.REQ)
        # the identity the kernel sends this client's input_request to
        stdin = _keyless(ctx, info, "stdin", zmq.DEALER, routing_id=curve_kernel.kc.session.bsession)
        for sock in (shell, control):  # correctly signed: only the transport keeps them out
            session.send(sock, "kernel_info_request", {})
        hb.send(b"ping")
        # While they wait: a keyed client's cell prints (iopub) and asks for input (stdin,
        # the keyed client's own stdin channel is stopped so only the keyless one could answer).
        curve_kernel.kc.stdin_channel.stop()
        msg_id = curve_kernel.kc.execute("print('secret output'); input('secret prompt')", allow_stdin=True)
        poller = zmq.Poller()
        for sock in (shell, control, iopub, hb, stdin):
            poller.register(sock, zmq.POLLIN)
        assert poller.poll(QUIET_WAIT_MS) == [], "a keyless client received something"
        curve_kernel.process.interrupt()  # ends the input() nobody can answer
        reply = curve_kernel.get_reply(msg_id)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert stream_text(curve_kernel.collect_iopub(msg_id)) == "secret output\n"
        assert poller.poll(0) == []
    finally:
        ctx.destroy(linger=0)
    assert ok(curve_kernel, "1 + 1").content["status"] == "ok"  # the kernel serves the keyed client on


def test_keyless_attempts_leave_no_log_lines_and_no_growing_memory(curve_kernel: KernelHarness) -> None:
    info = read_ports(curve_kernel.process.connection_file)  # type: ignore[arg-type]
    assert info is not None
    pid = curve_kernel.process.popen.pid
    log_before = curve_kernel.process.stderr
    ctx = zmq.Context()

    def attempts(count: int) -> None:
        """``count`` keyless connections, each refused by the curve handshake, on shell and hb."""
        for channel in ("shell", "hb") * (count // 2):
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
            sock.connect(channel_url(info, channel))
            sock.send(b"hello")
            deadline = time.monotonic() + TIMEOUT
            while True:  # until the kernel has dropped the connection
                assert monitor.poll(max(1, int((deadline - time.monotonic()) * 1000))), "no disconnect"
                event = recv_monitor_message(monitor)
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    break
            sock.disable_monitor()
            monitor.close(linger=0)
            sock.close(linger=0)

    try:
        attempts(100)  # warm-up: allocator and libzmq pools settle
        rss_before = _rss(pid)
        attempts(1000)
        grown = _rss(pid) - rss_before
    finally:
        ctx.destroy(linger=0)
    print(f"\n1,000 refused keyless connections: kernel RSS grew {grown / 2**20:.2f} MiB")
    assert grown < 4 * 2**20, grown
    assert curve_kernel.process.stderr == log_before, "the kernel logged keyless attempts"
    assert ok(curve_kernel, "'still here'").content["status"] == "ok"


def test_mismatched_key_pair_is_a_clear_error(kernels: Kernels, tmp_path: Path) -> None:
    path = NewConnectionFile(curve=True).write(tmp_path / "kernel.json")
    info = json.loads(path.read_text())
    info["curve_publickey"] = zmq.curve_keypair()[0].decode()  # another pair's public key
    path.write_text(json.dumps(info))
    kernel = kernels.start(connection=path, log=True)
    assert kernel.wait(TIMEOUT) == 2
    assert "curve_publickey is not the public key of curve_secretkey" in kernel.stderr, kernel.stderr


def test_half_a_key_pair_is_a_clear_error(kernels: Kernels, tmp_path: Path) -> None:
    path = NewConnectionFile(curve=True).write(tmp_path / "kernel.json")
    info = json.loads(path.read_text())
    del info["curve_secretkey"]
    path.write_text(json.dumps(info))
    kernel = kernels.start(connection=path, log=True)
    assert kernel.wait(TIMEOUT) == 2
    assert "curve_publickey is given without curve_secretkey" in kernel.stderr, kernel.stderr


@pytest.mark.parametrize("policy", ["required", "auto"])
def test_jupyter_client_transport_encryption_runs_cells_over_curve(policy: str) -> None:
    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, transport_encryption=policy)
    try:
        info = json.loads(Path(km.connection_file).read_text())
        assert info["curve_publickey"] and info["curve_secretkey"], "jupyter_client provisioned no keys"
        msg_id = kc.execute("import sys\nprint(sys.version_info[0])")
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        validate(reply, "execute_reply", msg_id)
        assert reply["content"]["status"] == "ok"
        outputs = []
        while True:
            msg = kc.get_iopub_msg(timeout=TIMEOUT)
            validate(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            outputs.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"] == ["3\n"]
        assert kc.hb_channel.is_beating()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert not km.is_alive()


def test_binding_beyond_loopback_with_curve_does_not_warn(kernels: Kernels) -> None:
    process = kernels.start(connection=NewConnectionFile(ip="0.0.0.0", curve=True), log=True)
    kernel = KernelHarness.connect(process)
    assert ok(kernel, "'reachable, encrypted'").content["status"] == "ok"
    kernel.kc.stop_channels()
    assert process.shutdown() == 0
    assert "NOT encrypted" not in process.stderr, process.stderr
