"""The kernelspec that `python -m fastkernel install` writes, and the repository's kernelspec/."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec

from fastkernel import PROTOCOL_VERSION
from fastkernel.kernelspec import kernel_json

REPO_SPEC = Path(__file__).resolve().parents[2] / "kernelspec" / "kernel.json"


def test_installed_spec_declares_curve_encryption() -> None:
    # jupyter_client 8.9+ provisions CurveZMQ keys (transport_encryption auto/required) only
    # for kernelspecs that declare it.
    spec = KernelSpec(**kernel_json(python="/usr/bin/python3"))
    assert "curve" in spec.metadata["supported_encryption"]


def test_protocol_version_is_the_kernels_own() -> None:
    # Kallichore decides from it whether to send a JEP 66 registration file (>= 5.5).
    assert kernel_json()["kernel_protocol_version"] == PROTOCOL_VERSION == "5.5"


def test_repository_kernelspec_agrees_with_the_installed_one() -> None:
    repo = json.loads(REPO_SPEC.read_text())
    built = kernel_json()
    for field in ("kernel_protocol_version", "metadata", "interrupt_mode", "language"):
        assert repo[field] == built[field], field
