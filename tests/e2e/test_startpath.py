"""The start path: the first reply comes before the runtime is built, and nothing is lost by it.

Requests sent before the kernel serves wait in its sockets; a first request that runs code
gets its runtime built on the spot; a config file still applies to a plain ``-f FILE`` start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient

from tests.e2e.harness import KernelHarness
from tests.e2e.test_launch import (
    Launched,
    _client,
    _ports_written,
    _shutdown,
    _wait_for,
    _write_connection_file,
)
from tests.spec import validate

TIMEOUT = 20


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), **extra)
    env.pop("JPY_PARENT_PID", None)
    return env


def test_kernel_info_is_answered_before_the_runtime_is_built(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    path = tmp_path / "kernel.json"
    _write_connection_file(path, **{f"{c}_port": 0 for c in ("shell", "iopub", "stdin", "control", "hb")})
    kernel = Launched(["-f", str(path)], tmp_path, _env(tmp_path, FASTKERNEL_START_TRACE=str(trace)))
    try:
        kc = _client_when_ready(path, kernel)
        msg_id = kc.kernel_info()
        validate(kc.get_shell_msg(timeout=TIMEOUT), "kernel_info_reply", msg_id)
        reply = kc.execute_interactive("1 + 1", timeout=TIMEOUT, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok"
        marks = json.loads(trace.read_text())
        order = ["main", "settings", "imports", "bound", "serving", "first_request", "first_reply", "runtime"]
        assert sorted(marks, key=marks.get) == order
        _shutdown(kc, kernel)
        kc.stop_channels()
    finally:
        kernel.close()


def _client_when_ready(path: Path, kernel: Launched) -> BlockingKernelClient:
    _wait_for(_ports_written(path), "the ports to be written back", kernel)
    return _client(path)


def test_a_first_request_that_runs_code_builds_the_runtime(tmp_path: Path) -> None:
    path = tmp_path / "kernel.json"
    _write_connection_file(path, **{f"{c}_port": 0 for c in ("shell", "iopub", "stdin", "control", "hb")})
    kernel = Launched(["-f", str(path)], tmp_path, _env(tmp_path))
    try:
        kc = _client_when_ready(path, kernel)
        outputs: list[str] = []
        reply = kc.execute_interactive(
            "import sys; print(type(sys.stdout).__name__, __name__)",
            timeout=TIMEOUT,
            output_hook=lambda m: outputs.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok"
        assert "".join(outputs) == "KernelStream __main__\n"
        _shutdown(kc, kernel)
        kc.stop_channels()
    finally:
        kernel.close()


def test_a_config_file_applies_to_a_plain_start(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "fastkernel_config.py").write_text("c.FastKernelApp.output_limit = 20\n")
    harness = KernelHarness.start(env=_env(tmp_path, JUPYTER_CONFIG_DIR=str(config)))
    try:
        ex = harness.execute("print('x' * 100)")
        assert "characters elided by fastkernel (output_limit)" in ex.stream_text("stderr")
        assert len(ex.stream_text("stdout")) < 100
    finally:
        harness.close()
