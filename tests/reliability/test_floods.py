"""Output floods and big results: the kernel stays responsive, bounded in memory and under
jupyter_server's iopub message rate limit, and every character arrives (or is elided with the
documented marker when ``output_limit`` is set).

While a flood cell runs, a second client pings the control channel with ``kernel_info_request``
every 50 ms and samples the kernel process's ``VmRSS`` from ``/proc``. Messages are counted per
one-second window of their arrival at the client, as jupyter_server counts them (it drops
output past 1,000 messages a second, ``iopub_msg_rate_limit``).

Sizes here are tens of MB (``make test``); the ``stress`` variants (``make stress``) push
hundreds. Measured figures are in docs/reliability.md ("Floods and memory").
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import zmq
from jupyter_client.session import Session

from fastkernel.outputs import StreamCoalescer
from fastkernel.transport.iopub import IOPUB_STALL_S
from tests.harness import KernelHarness, merge_streams, stream_text
from tests.kernels import channel_url

MB = 1_000_000
RATE_LIMIT = 1000  # jupyter_server's default iopub_msg_rate_limit, messages a second
PING_EVERY_S = 0.05
PING_TIMEOUT_S = 5.0  # a control ping not answered by then counts as unanswered (a hung channel)
FLOOD_TIMEOUT = 120.0
TIMEOUT_S = 20.0
BIG_FRAME = 4 * MB


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0]) * 1024
    return out


class ControlProbe(threading.Thread):
    """A second client: kernel_info_request on control every PING_EVERY_S, and the kernel's RSS."""

    def __init__(self, kernel: KernelHarness) -> None:
        super().__init__(name="control-probe", daemon=True)
        info = kernel.process.connection_info()
        self.session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        self.address = channel_url(info, "control")
        self.pid = kernel.process.pid
        self.latencies: list[float] = []
        self.unanswered = 0
        self.rss: list[int] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(self.address)
        try:
            while not self.stop_event.is_set():
                sent = self.session.send(sock, "kernel_info_request", {})
                t0 = time.monotonic()
                answered = False
                while sock.poll(int(PING_TIMEOUT_S * 1000)):
                    _, reply = self.session.recv(sock)
                    if reply is not None and reply["parent_header"].get("msg_id") == sent["header"]["msg_id"]:
                        self.latencies.append(time.monotonic() - t0)
                        answered = True
                        break
                if not answered:
                    self.unanswered += 1
                self.rss.append(_status(self.pid)["VmRSS"])
                self.stop_event.wait(PING_EVERY_S)
        finally:
            sock.close(linger=0)
            ctx.term()

    def __enter__(self) -> ControlProbe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.join(timeout=10)


@dataclass
class Flood:
    """What a client saw of one cell, with the probe's figures."""

    reply: dict[str, Any]
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (arrival, msg)
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    rss: list[int] = field(default_factory=list)
    hwm: int = 0
    seconds: float = 0.0
    chars: int = 0  # stream characters received, kept or not

    def text(self, name: str = "stdout") -> str:
        return stream_text((m for _, m in self.messages), name)

    def streams(self) -> list[tuple[str, str]]:
        """Stream text with consecutive messages of one stream joined, as a frontend shows it."""
        return merge_streams(m for _, m in self.messages)

    def peak_rate(self) -> int:
        """Most non-status iopub messages arriving in one one-second window."""
        counted = [t for t, m in self.messages if m["msg_type"] not in ("status", "execute_input")]
        windows = Counter(int(t - counted[0]) for t in counted) if counted else Counter()
        return max(windows.values(), default=0)

    def figures(self) -> str:
        lat = sorted(self.latencies)
        return (
            f"{self.seconds:.2f} s, {len(self.messages)} msgs, peak {self.peak_rate()}/s, "
            f"control max {lat[-1] * 1e3:.0f} ms (n={len(lat)}), "
            f"peak RSS {max(self.rss, default=0) / 2**20:.0f} MiB, HWM {self.hwm / 2**20:.0f} MiB"
        )


def flood(kernel: KernelHarness, code: str, keep: bool = True) -> Flood:
    """Run ``code``, collecting its iopub messages with their arrival times, while probing."""
    with ControlProbe(kernel) as probe:
        t0 = time.monotonic()
        msg_id = kernel.kc.execute(code)
        messages: list[tuple[float, dict[str, Any]]] = []
        chars = 0
        deadline = t0 + FLOOD_TIMEOUT
        session, sock = kernel.kc.session, kernel.kc.iopub_channel.socket
        while True:
            assert sock.poll(max(10, (deadline - time.monotonic()) * 1000)), "iopub went silent"
            _, frames = session.feed_identities(sock.recv_multipart())
            msg = session.deserialize(frames, content=False)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if len(msg["content"]) > BIG_FRAME:  # parsed after the cell: parsing it here would
                messages.append((time.monotonic(), msg))  # hold our GIL and delay the probe
                continue
            msg["content"] = session.unpack(msg["content"])
            if msg["msg_type"] == "stream":
                chars += len(msg["content"]["text"])
                if not keep:  # the arrival still counts towards the rate
                    msg = {"msg_type": "stream", "content": {"name": msg["content"]["name"], "text": ""}}
            messages.append((time.monotonic(), msg))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = kernel.get_reply(msg_id)
        seconds = time.monotonic() - t0
        # At least one ping lands after the cell, so a wedged control thread cannot pass.
        count = len(probe.latencies) + probe.unanswered
        while len(probe.latencies) + probe.unanswered == count and probe.is_alive():
            probe.stop_event.wait(0.01)
    for _, msg in messages:
        if isinstance(msg["content"], bytes | memoryview):
            msg["content"] = session.unpack(msg["content"])
            if msg["msg_type"] == "stream":
                chars += len(msg["content"]["text"])
    result = Flood(
        reply, messages, probe.latencies, probe.unanswered, probe.rss, seconds=seconds, chars=chars
    )
    result.hwm = _status(kernel.process.pid)["VmHWM"]
    print(f"\n{code[:60]!r}: {result.figures()}")
    return result


def assert_healthy(result: Flood) -> None:
    """The user-visible guarantees of every flood: ok, control answering every ping during and
    after it, under jupyter_server's rate limit. (How fast control answers is measured by
    benchmarks/floods.py, not asserted here.)"""
    assert result.reply["content"]["status"] == "ok", result.reply["content"]
    assert result.unanswered == 0, result.figures()
    assert result.latencies, "the control probe got no answer at all"
    assert result.peak_rate() < RATE_LIMIT, result.figures()


@pytest.fixture
def kernel() -> Iterator[KernelHarness]:
    """A kernel per test: VmHWM (peak RSS) must start from a clean process."""
    with KernelHarness.start() as harness:
        yield harness


def write_flood(n_mb: int) -> str:
    return f"import sys\nfor _ in range({n_mb * 1000}):\n    sys.stdout.write('x' * 1000)"


def check_write_flood_memory_is_bounded(kernel: KernelHarness, small: int, big: int) -> None:
    """Peak RSS after a flood of ``big`` MB is about that after one of ``small`` MB."""
    first = flood(kernel, write_flood(small), keep=False)
    assert_healthy(first)
    second = flood(kernel, write_flood(big), keep=False)
    assert_healthy(second)
    assert (first.chars, second.chars) == (small * MB, big * MB)
    growth = second.hwm - first.hwm
    # Proportional growth would be >= (big - small) MB; allow a fixed slack for allocator noise.
    assert growth < min(16 * MB, (big - small) * MB // 2), (first.figures(), second.figures())


# -- make test: tens of MB ------------------------------------------------------------------


def test_print_flood_arrives_whole_with_control_answered(kernel: KernelHarness) -> None:
    n = 1_000_000  # 6.9 MB of lines
    result = flood(kernel, f"for i in range({n}):\n    print(i)")
    assert_healthy(result)
    text = result.text()
    assert len(text) == sum(len(f"{i}\n") for i in range(n))
    assert text.startswith("0\n1\n2\n") and text.endswith(f"{n - 2}\n{n - 1}\n")


def test_flushed_print_flood_sends_few_messages(kernel: KernelHarness) -> None:
    n = 500_000
    result = flood(kernel, f"for i in range({n}):\n    print(i, flush=True)")
    assert_healthy(result)
    assert result.text() == "".join(f"{i}\n" for i in range(n))
    streams = sum(1 for _, m in result.messages if m["msg_type"] == "stream")
    assert streams * 100 <= n, result.figures()  # flushes are coalesced (~20 a second), not one per print


def test_write_flood_of_40_mb_keeps_memory_bounded(kernel: KernelHarness) -> None:
    check_write_flood_memory_is_bounded(kernel, 20, 40)


def test_write_flood_arrives_whole(kernel: KernelHarness) -> None:
    result = flood(kernel, write_flood(20))
    assert_healthy(result)
    text = result.text()
    assert len(text) == 20 * MB and text.count("x") == 20 * MB


def test_stdout_stderr_alternating_flood_stays_under_the_rate_limit(kernel: KernelHarness) -> None:
    n = 100_000
    result = flood(kernel, f"import sys\nfor i in range({n}):\n    print(i)\n    print(-i, file=sys.stderr)")
    assert_healthy(result)
    # Nothing lost and each stream in its own order; only the interleaving is coarser.
    assert result.text("stdout") == "".join(f"{i}\n" for i in range(n))
    assert result.text("stderr") == "".join(f"{-i}\n" for i in range(n))


def test_big_display_data_arrives_whole_and_memory_is_released(kernel: KernelHarness) -> None:
    size = 20 * MB
    before = _status(kernel.process.pid)["VmRSS"]
    result = flood(kernel, f"display({{'text/plain': 'x' * {size}}}, raw=True)")
    assert_healthy(result)
    (shown,) = [m for _, m in result.messages if m["msg_type"] == "display_data"]
    assert len(shown["content"]["data"]["text/plain"]) == size
    # The value, its JSON and the encoded frame exist at once: a few copies at the peak, no more.
    assert result.hwm - before < 5 * size, result.figures()
    after = _status(kernel.process.pid)["VmRSS"]
    for _ in range(2):
        again = flood(kernel, f"display({{'text/plain': 'x' * {size}}}, raw=True)")
        assert_healthy(again)
    last = _status(kernel.process.pid)["VmRSS"]
    # Nothing is pinned: repeating it does not grow the kernel. (The C allocator may keep about
    # one freed copy for reuse: glibc's mmap threshold rises after a big block is freed.)
    assert last - after < size // 2, (before, after, last)
    assert after - before < 2 * size, (before, after)


def test_output_limit_elides_a_flood_with_the_marker() -> None:
    with KernelHarness.start("--output-limit=100000") as kernel:
        n = 300_000
        result = flood(kernel, f"for i in range({n}):\n    print(i)")
        assert_healthy(result)
        printed = sum(len(f"{i}\n") for i in range(n))
        marker = f"[... {printed - 100_000:,} characters elided by fastkernel (output_limit) ...]\n"
        shown = result.streams()
        assert [name for name, _ in shown] == ["stdout", "stderr", "stdout"]
        assert shown[0][1].startswith("0\n1\n") and len(shown[0][1]) == 50_000
        assert shown[1][1] == marker
        assert shown[2][1].endswith(f"{n - 1}\n") and len(shown[2][1]) == 50_000


class SlowReader:
    """An iopub subscriber of its own with tiny buffers, that reads one message per ``pace_s``."""

    def __init__(self, kernel: KernelHarness) -> None:
        info = kernel.process.connection_info()
        self.session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.rcvhwm = 2
        self.sock.setsockopt(zmq.RCVBUF, 1 << 16)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(channel_url(info, "iopub"))
        welcome = self.recv(TIMEOUT_S)  # the kernel greets each new subscriber
        assert welcome is not None and welcome["msg_type"] == "iopub_welcome", welcome

    def recv(self, timeout: float) -> dict[str, Any] | None:
        if not self.sock.poll(timeout * 1000):
            return None
        _, frames = self.session.feed_identities(self.sock.recv_multipart())
        return self.session.deserialize(frames)

    def read_cell(self, msg_id: str, pace_s: float = 0.0) -> int:
        """Stream characters of ``msg_id`` until its idle, reading one message per ``pace_s``."""
        chars = 0
        while True:
            msg = self.recv(FLOOD_TIMEOUT)
            assert msg is not None, "iopub went silent"
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["msg_type"] == "stream":
                    chars += len(msg["content"]["text"])
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return chars
            if pace_s:
                time.sleep(pace_s)  # a slow frontend, on purpose

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def test_a_slow_subscriber_slows_the_flood_instead_of_growing_the_kernel(kernel: KernelHarness) -> None:
    reader = SlowReader(kernel)
    try:
        hwm = []
        for n_mb in (36, 72):
            msg_id = kernel.kc.execute(write_flood(n_mb))
            t0 = time.monotonic()
            assert reader.read_cell(msg_id, pace_s=0.04) == n_mb * MB  # slower than the cell writes
            assert kernel.get_reply(msg_id)["content"]["status"] == "ok"
            hwm.append(_status(kernel.process.pid)["VmHWM"])
            print(f"\n{n_mb} MB to a 20 MB/s reader: {time.monotonic() - t0:.1f} s, HWM {hwm[-1] >> 20} MiB")
        # Without backpressure the backlog, and so the peak, grows with the flood (+27 MB here).
        assert hwm[1] - hwm[0] < 12 * MB, hwm
    finally:
        reader.close()


def test_a_stuck_subscriber_does_not_hang_the_cell() -> None:
    with KernelHarness.start(log=True) as kernel:
        reader = SlowReader(kernel)
        try:
            msg_id = kernel.kc.execute(write_flood(60))  # past IOPUB_QUEUE_LIMIT, nobody reading
            reply = kernel.get_reply(msg_id, timeout=IOPUB_STALL_S + 60)
            assert reply["content"]["status"] == "ok"
            assert reader.read_cell(msg_id) == 60 * MB  # all of it, once the reader reads again
            assert "an iopub subscriber took no output" in kernel.process.stderr
        finally:
            reader.close()


def big_results(kernel: KernelHarness, cells: int, size: int) -> list[int]:
    """Run ``cells`` cells each returning a ``size``-byte bytes object; RSS after each."""
    pid = kernel.process.pid
    rss = []
    for k in range(cells):
        ex = kernel.execute(f"bytes([{65 + k % 26}]) * {size}")  # repr: b'AAA...'
        assert ex.content["status"] == "ok"
        (result,) = ex.of_type("execute_result")
        assert len(result["content"]["data"]["text/plain"]) >= size
        rss.append(_status(pid)["VmRSS"])
    return rss


def check_out_cache_bounds_memory(size: int) -> None:
    cache_bytes = int(2.5 * size)  # room for two results in Out
    with KernelHarness.start(f"--output-cache-bytes={cache_bytes}") as kernel:
        base = _status(kernel.process.pid)["VmRSS"]
        rss = big_results(kernel, 10, size)
        ex = kernel.execute("sorted(Out), [len(v) for v in Out.values()], len(_), len(__), len(___)")
        keys, lengths, *unders = eval(ex.of_type("execute_result")[0]["content"]["data"]["text/plain"])
        count = ex.content["execution_count"]
        assert keys == [count - 2, count - 1] and lengths == [size, size]  # what output_cache_bytes says
        assert unders == [size, size, size]  # _, __ and ___ hold the last three, as in IPython
        # Held: the last three results (in _, __, ___; Out's two are among them). Ten are never kept.
        print(f"\nRSS after each of 10 results of {size / MB:.0f} MB: {[r // 2**20 for r in rss]} MiB")
        assert max(rss) - base < 6 * size, rss
        # Emptying Out (and its _N names) and three more results (for _, __, ___) frees them all.
        ex = kernel.execute("for k in list(Out):\n    globals().pop(f'_{k}', None)\nOut.clear()")
        assert ex.content["status"] == "ok"
        for k in range(3):
            assert kernel.execute(str(k)).content["status"] == "ok"
        # glibc keeps freed heap blocks for reuse; hand them back so RSS shows what is still held.
        kernel.execute("import ctypes; ctypes.CDLL('libc.so.6').malloc_trim(0);")
        assert _status(kernel.process.pid)["VmRSS"] - base < size, "results stayed pinned"


def test_out_cache_keeps_what_its_limits_say_and_no_more() -> None:
    check_out_cache_bounds_memory(20 * MB)


def test_out_cache_entries_limit() -> None:
    with KernelHarness.start("--output-cache-entries=3") as kernel:
        for k in range(6):
            kernel.execute(f"{k} * 10")
        ex = kernel.execute("sorted(Out.values())")
        assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "[30, 40, 50]"


def test_rate_bucket_merges_per_stream_only_past_its_budget() -> None:
    published: list[tuple[str, str]] = []
    streams = StreamCoalescer(lambda name, text, parent: published.append((name, text)), lambda _: None)
    streams.max_rate = 10
    for i in range(4):  # 8 segments: within the burst of 10, order kept
        streams.write("stdout", f"o{i}\n")
        streams.write("stderr", f"e{i}\n")
    streams.flush()
    assert published == [(n, f"{n[3]}{i}\n") for i in range(4) for n in ("stdout", "stderr")]
    published.clear()
    for i in range(50):  # 100 segments: past the bucket, one message per stream
        streams.write("stdout", f"o{i}\n")
        streams.write("stderr", f"e{i}\n")
    streams.flush()
    assert published == [
        ("stdout", "".join(f"o{i}\n" for i in range(50))),
        ("stderr", "".join(f"e{i}\n" for i in range(50))),
    ]


# -- make stress: hundreds of MB ------------------------------------------------------------


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_stress_write_flood_of_400_mb_keeps_memory_bounded(kernel: KernelHarness) -> None:
    check_write_flood_memory_is_bounded(kernel, 200, 400)


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_stress_print_flood_of_5m_lines(kernel: KernelHarness) -> None:
    n = 5_000_000
    result = flood(kernel, f"for i in range({n}):\n    print(i)")
    assert_healthy(result)
    text = result.text()
    assert len(text) == sum(len(f"{i}\n") for i in range(n)) and text.endswith(f"{n - 1}\n")


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_stress_display_data_of_100_mb(kernel: KernelHarness) -> None:
    size = 100 * MB
    before = _status(kernel.process.pid)["VmRSS"]
    result = flood(kernel, f"display({{'text/plain': 'x' * {size}}}, raw=True)")
    assert_healthy(result)
    (shown,) = [m for _, m in result.messages if m["msg_type"] == "display_data"]
    assert len(shown["content"]["data"]["text/plain"]) == size
    assert result.hwm - before < 5 * size, result.figures()


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_stress_out_cache_with_50_mb_results() -> None:
    check_out_cache_bounds_memory(50 * MB)
