"""Shared fixtures: a kernelspec for the interpreter running the tests, on JUPYTER_PATH.

Tests therefore start the fastkernel of this checkout with this Python, whatever is
installed elsewhere on the machine.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

KERNEL_NAME = "fastkernel-test"
_SPEC_ROOT = Path(tempfile.mkdtemp(prefix="fastkernel-spec-"))


def _install_test_kernelspec() -> None:
    spec_dir = _SPEC_ROOT / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "fastkernel", "-f", "{connection_file}"],
        "display_name": "fastkernel (tests)",
        "language": "python",
        "interrupt_mode": "signal",
        "kernel_protocol_version": "5.5",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    paths = [str(_SPEC_ROOT), *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(paths)


_install_test_kernelspec()
