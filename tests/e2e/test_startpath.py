"""The start path: the first reply comes before the runtime is built, and nothing is lost by it.

Requests sent before the kernel serves wait in its sockets; a first request that runs code
gets its runtime built on the spot; a config file still applies to a plain ``-f FILE`` start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.harness import KernelHarness
from tests.kernels import Kernels

TIMEOUT = 20


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), **extra)
    env.pop("JPY_PARENT_PID", None)
    return env


def test_kernel_info_is_answered_before_the_runtime_is_built(tmp_path: Path, kernels: Kernels) -> None:
    trace = tmp_path / "trace.json"
    env = _env(tmp_path, FASTKERNEL_START_TRACE=str(trace))
    kernel = kernels.start(env=env, history_file=None)  # argv `-f FILE` only: the quick start
    kc = kernel.client()
    kc.kernel_info()
    assert kc.get_shell_msg(timeout=TIMEOUT)["content"]["status"] == "ok"
    reply = kc.execute_interactive("1 + 1", timeout=TIMEOUT, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok"
    marks = json.loads(trace.read_text())
    order = ["main", "settings", "imports", "bound", "serving", "first_request", "first_reply", "runtime"]
    assert sorted(marks, key=marks.get) == order
    assert kernel.shutdown() == 0


def test_a_first_request_that_runs_code_builds_the_runtime(tmp_path: Path, kernels: Kernels) -> None:
    kc = kernels.start(env=_env(tmp_path), history_file=None).client()
    outputs: list[str] = []
    reply = kc.execute_interactive(
        "import sys; print(type(sys.stdout).__name__, __name__)",
        timeout=TIMEOUT,
        output_hook=lambda m: outputs.append(m["content"].get("text", "")),
    )
    assert reply["content"]["status"] == "ok"
    assert "".join(outputs) == "KernelStream __main__\n"


def test_a_config_file_applies_to_a_plain_start(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "fastkernel_config.py").write_text("c.FastKernelApp.output_limit = 20\n")
    env = _env(tmp_path, JUPYTER_CONFIG_DIR=str(config))
    with KernelHarness.start(env=env, history_file=None) as harness:
        ex = harness.execute("print('x' * 100)")
        assert "characters elided by fastkernel (output_limit)" in ex.stream_text("stderr")
        assert len(ex.stream_text("stdout")) < 100
