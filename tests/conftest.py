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


def install_kernelspec(name: str, argv: list[str]) -> str:
    """Install a kernelspec ``name`` running ``argv -f {connection_file}`` where tests find it."""
    spec_dir = _SPEC_ROOT / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [*argv, "-f", "{connection_file}"],
        "display_name": f"{name} (tests)",
        "language": "python",
        "interrupt_mode": "signal",
        "kernel_protocol_version": "5.5",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return name


def _put_specs_on_jupyter_path() -> None:
    paths = [str(_SPEC_ROOT), *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
    os.environ["JUPYTER_PATH"] = os.pathsep.join(paths)


# Test kernels keep their input history in memory, not in the user's Jupyter data dir; tests
# of the history file pass --history-file (a later argument wins).
install_kernelspec(KERNEL_NAME, [sys.executable, "-m", "fastkernel", "--history-file=:memory:"])
_put_specs_on_jupyter_path()
# Kernels that tests launch by hand (python -m fastkernel) write their history file under the
# Jupyter data dir: a temporary one, never the user's.
os.environ["JUPYTER_DATA_DIR"] = str(_SPEC_ROOT / "data")
