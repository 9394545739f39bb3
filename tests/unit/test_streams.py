"""Output streams without sockets: coalescing, order, routing to cells, bounds, fd capture."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fastkernel.interpreter.streams import KernelStream
from fastkernel.outputs import CURRENT_CELL, DISCARD, StreamCoalescer, output_target, output_to, split_text
from fastkernel.transport.fdcapture import FdCapture

Published = tuple[str, str, Any]  # (stream name, text, parent)


class Recorder:
    """The coalescer's publish and schedule callbacks, recorded."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.scheduled: list[float] = []

    def publish(self, name: str, text: str, parent: Any) -> None:
        self.published.append((name, text, parent))

    def schedule(self, delay: float) -> None:
        self.scheduled.append(delay)

    def text(self, name: str = "stdout") -> str:
        return "".join(text for n, text, _ in self.published if n == name)

    def merged(self) -> list[tuple[str, str]]:
        """Published text with runs of the same stream joined: what a frontend shows."""
        out: list[tuple[str, str]] = []
        for name, text, _ in self.published:
            if out and out[-1][0] == name:
                out[-1] = (name, out[-1][1] + text)
            else:
                out.append((name, text))
        return out


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def streams(rec: Recorder) -> StreamCoalescer:
    return StreamCoalescer(rec.publish, rec.schedule)


def request(msg_id: str) -> dict[str, Any]:
    return {"header": {"msg_id": msg_id}}


# -- coalescing and order -----------------------------------------------------------


def test_flush_after_every_write_does_not_send_a_message_per_write(
    streams: StreamCoalescer, rec: Recorder
) -> None:
    out = KernelStream("stdout", streams.write)
    for i in range(10_000):
        print(i, file=out, flush=True)
    assert rec.published == []  # nothing until the timer the first write asked for fires
    assert rec.scheduled == [streams.interval]
    streams.flush()
    assert len(rec.published) == 1
    assert rec.text() == "".join(f"{i}\n" for i in range(10_000))


def test_interleaved_stdout_and_stderr_keep_their_true_order(streams: StreamCoalescer, rec: Recorder) -> None:
    out, err = KernelStream("stdout", streams.write), KernelStream("stderr", streams.write)
    for i in range(100):
        print(f"out {i}", file=out, flush=True)
        print(f"err {i}", file=err, flush=True)
    streams.flush()
    expected = [(n, f"{n[3:]} {i}\n") for i in range(100) for n in ("stdout", "stderr")]
    assert [(n, t) for n, t, _ in rec.published] == expected


def test_writes_from_many_threads_lose_nothing(streams: StreamCoalescer, rec: Recorder) -> None:
    out = KernelStream("stdout", streams.write)

    def work(k: int) -> None:
        for i in range(2000):
            out.write(f"{k}:{i}\n")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    streams.flush()
    lines = rec.text().splitlines()
    assert sorted(lines) == sorted(f"{k}:{i}" for k in range(4) for i in range(2000))
    for k in range(4):  # each thread's own lines stay in its order
        assert [line for line in lines if line.startswith(f"{k}:")] == [f"{k}:{i}" for i in range(2000)]


def test_pending_output_past_max_pending_is_sent_without_waiting(rec: Recorder) -> None:
    streams = StreamCoalescer(rec.publish, rec.schedule, max_pending=100)
    streams.write("stdout", "x" * 60)
    assert rec.published == []
    streams.write("stdout", "y" * 60)
    assert rec.text() == "x" * 60 + "y" * 60


def test_flush_of_a_kernel_stream_sends_nothing_by_itself(streams: StreamCoalescer, rec: Recorder) -> None:
    out = KernelStream("stdout", streams.write)
    out.write("a")
    out.flush()
    assert rec.published == []


def test_fileno_is_reported_only_when_the_fd_is_captured(streams: StreamCoalescer) -> None:
    out = KernelStream("stdout", streams.write)
    with pytest.raises(OSError):
        out.fileno()
    out.fd = 1
    assert out.fileno() == 1


# -- bounded messages and the output limit ----------------------------------------------


def test_huge_line_is_split_into_bounded_messages_and_nothing_is_lost(
    streams: StreamCoalescer, rec: Recorder
) -> None:
    streams.max_message = 1000
    line = "".join(chr(ord("a") + i % 26) for i in range(10_500)) + "\n"
    streams.write("stdout", line)
    streams.flush()
    sizes = [len(text) for _, text, _ in rec.published]
    assert max(sizes) <= 1000
    assert len(sizes) == 11
    assert rec.text() == line


def test_split_text_prefers_to_cut_after_a_newline() -> None:
    text = ("a" * 70 + "\n") * 10
    pieces = list(split_text(text, 100))
    assert "".join(pieces) == text
    assert all(len(p) <= 100 and p.endswith("\n") for p in pieces)


def test_output_limit_keeps_head_and_tail_and_says_how_much_was_elided(
    streams: StreamCoalescer, rec: Recorder
) -> None:
    streams.output_limit = 100
    cell = request("cell-1")
    with streams.cell(cell):
        for i in range(1000):
            streams.write("stdout", f"{i:04d}\n")  # 5 characters a line, 5,000 in all
    text = "".join(text for _, text, _ in rec.published)
    head = "".join(f"{i:04d}\n" for i in range(10))
    tail = "".join(f"{i:04d}\n" for i in range(990, 1000))
    marker = "[... 4,900 characters elided by fastkernel (output_limit) ...]\n"
    assert text == head + marker + tail
    assert ("stderr", marker) in rec.merged()
    assert all(parent is cell for _, _, parent in rec.published)


def test_output_limit_is_off_by_default_and_resets_per_cell(streams: StreamCoalescer, rec: Recorder) -> None:
    with streams.cell(request("big")):
        streams.write("stdout", "x" * 100_000)
    assert rec.text() == "x" * 100_000
    rec.published.clear()
    streams.output_limit = 10
    with streams.cell(request("a")):
        streams.write("stdout", "0123456789")
    with streams.cell(request("b")):
        streams.write("stdout", "abcdefghij")
    assert rec.text() == "0123456789abcdefghij"


def test_output_limit_holds_back_a_bounded_tail(streams: StreamCoalescer, rec: Recorder) -> None:
    streams.output_limit = 1000
    with streams.cell(request("cell")):
        for _ in range(200):
            streams.write("stdout", "z" * 10_000)
            assert streams._clip is not None and streams._clip.tail_len <= 500
    assert len(rec.text()) == 1000
    assert "1,999,000 characters elided" in rec.text("stderr")


# -- routing output to cells --------------------------------------------------------------


def test_output_goes_to_the_cell_running_at_write_time(streams: StreamCoalescer, rec: Recorder) -> None:
    one, two = request("one"), request("two")
    with streams.cell(one):
        streams.write("stdout", "a")
    with streams.cell(two):
        streams.write("stdout", "b")
    streams.write("stdout", "c")  # between cells: the last cell
    streams.flush()
    assert [(t, p) for _, t, p in rec.published] == [("a", one), ("b", two), ("c", two)]


def test_a_thread_writes_to_the_cell_that_started_it_after_that_cell_ended(
    streams: StreamCoalescer, rec: Recorder
) -> None:
    one, two = request("one"), request("two")
    go = threading.Event()

    def late() -> None:
        go.wait(10)
        streams.write("stdout", "from the thread\n")

    with streams.cell(one):
        thread = threading.Thread(target=late)
        thread.start()
    with streams.cell(two):
        streams.write("stdout", "cell two\n")
        go.set()
        thread.join(10)
    assert [(t, p["header"]["msg_id"]) for _, t, p in rec.published] == [
        ("cell two\n", "two"),
        ("from the thread\n", "one"),
    ]


def test_a_thread_started_outside_any_cell_follows_the_current_cell(
    streams: StreamCoalescer, rec: Recorder
) -> None:
    go, done = threading.Event(), threading.Event()

    def background() -> None:
        go.wait(10)
        streams.write("stdout", "x")
        done.set()

    with streams.cell(request("one")):
        pass
    threading.Thread(target=background).start()  # like the kernel's own threads
    with streams.cell(request("two")):
        go.set()
        done.wait(10)
    assert [p["header"]["msg_id"] for _, _, p in rec.published] == ["two"]


def test_asyncio_tasks_write_to_the_cell_that_created_them(streams: StreamCoalescer, rec: Recorder) -> None:
    loop = asyncio.new_event_loop()
    release = asyncio.Event()

    async def task_body() -> None:
        await release.wait()
        streams.write("stdout", "task\n")

    try:
        with streams.cell(request("one")):
            task = loop.create_task(task_body())
        with streams.cell(request("two")):

            async def finish() -> None:
                release.set()
                await task

            loop.run_until_complete(finish())
    finally:
        loop.close()
    assert [(t, p["header"]["msg_id"]) for _, t, p in rec.published] == [("task\n", "one")]


def test_output_to_retargets_discards_or_routes_to_a_callable(
    streams: StreamCoalescer, rec: Recorder
) -> None:
    one, two = request("one"), request("two")
    caught: list[tuple[str, str]] = []
    with streams.cell(one):
        here = output_target()
        assert here is one
    with streams.cell(two):
        with output_to(here):
            streams.write("stdout", "to one\n")
        with output_to(DISCARD):
            streams.write("stdout", "nowhere\n")
        with output_to(lambda name, text: caught.append((name, text))):
            streams.write("stderr", "caught\n")
        with output_to(one), output_to(CURRENT_CELL):
            streams.write("stdout", "to two\n")
    assert [(t, p["header"]["msg_id"]) for _, t, p in rec.published] == [
        ("to one\n", "one"),
        ("to two\n", "two"),
    ]
    assert caught == [("stderr", "caught\n")]


def test_a_thread_inherits_the_target_set_with_output_to(streams: StreamCoalescer, rec: Recorder) -> None:
    with streams.cell(request("one")), output_to(DISCARD):
        thread = threading.Thread(target=streams.write, args=("stdout", "dropped"))
        thread.start()
        thread.join(10)
    streams.flush()
    assert rec.published == []


def test_a_callable_target_that_prints_does_not_recurse(streams: StreamCoalescer, rec: Recorder) -> None:
    out = KernelStream("stdout", streams.write)
    with streams.cell(request("one")), output_to(lambda name, text: out.write(f"[{text}]")):
        out.write("x")
    assert rec.text() == "[x]"


# -- fd capture, on a descriptor of our own (pytest owns 1 and 2) ---------------------------


@pytest.fixture
def captured_fd() -> Iterator[tuple[int, list[tuple[str, str]], FdCapture]]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    got: list[tuple[str, str]] = []
    capture = FdCapture(lambda name, text: got.append((name, text)), fds=((devnull, "stdout"),))
    capture.start()
    yield devnull, got, capture
    capture.stop()
    os.close(devnull)


def test_fd_capture_hands_writes_to_the_sink_before_drain_returns(
    captured_fd: tuple[int, list[tuple[str, str]], FdCapture],
) -> None:
    fd, got, capture = captured_fd
    os.write(fd, "héllo\n".encode())
    capture.drain()
    assert "".join(t for _, t in got) == "héllo\n"
    assert {name for name, _ in got} == {"stdout"}


def test_fd_capture_takes_a_write_larger_than_the_pipe(
    captured_fd: tuple[int, list[tuple[str, str]], FdCapture],
) -> None:
    fd, got, capture = captured_fd
    data = b"y" * 5_000_000
    view = memoryview(data)
    while view:  # os.write may write part of it
        view = view[os.write(fd, view) :]
    capture.drain()
    assert len("".join(t for _, t in got)) == 5_000_000


def test_fd_capture_pipe_is_enlarged_where_the_system_allows(
    captured_fd: tuple[int, list[tuple[str, str]], FdCapture],
) -> None:
    _, _, capture = captured_fd
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            allowed = int(f.read())
    except OSError:
        pytest.skip("no /proc/sys/fs/pipe-max-size: not Linux")
    assert capture.captured[0].pipe_size >= min(allowed, 1 << 20)


def test_fd_capture_stop_gives_the_descriptor_back_and_keeps_the_rest(tmp_path: Any) -> None:
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    got: list[str] = []
    flushed: list[bool] = []
    capture = FdCapture(
        lambda name, text: got.append(text), lambda: flushed.append(True), fds=((fd, "stdout"),)
    )
    capture.start()
    os.write(fd, b"captured")
    capture.stop()
    os.write(fd, b"after")
    os.close(fd)
    assert "".join(got) == "captured"
    assert flushed == [True]
    assert path.read_bytes() == b"after"
    assert not capture.is_alive()


def test_fd_capture_of_a_closed_descriptor_is_skipped_not_fatal() -> None:
    closed = 999
    with pytest.raises(OSError):
        os.fstat(closed)  # not open in this process
    capture = FdCapture(lambda name, text: None, fds=((closed, "stdout"),))
    capture.start()  # logs a warning and runs without capture
    assert not capture.is_alive()
    capture.drain()
    capture.stop()


def test_fd_capture_drain_returns_while_a_writer_keeps_writing(
    captured_fd: tuple[int, list[tuple[str, str]], FdCapture],
) -> None:
    fd, got, capture = captured_fd
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            os.write(fd, b"z" * 4096)

    writer = threading.Thread(target=flood)
    writer.start()
    try:
        os.write(fd, b"marker")
        capture.drain()
        assert "marker" in "".join(t for _, t in got)
    finally:
        stop.set()
        writer.join(10)
