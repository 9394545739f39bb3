"""Fixtures for every tier.

Importing this installs the test kernelspec (``fastkernel-test``: this checkout's fastkernel
run by the Python running the tests) on JUPYTER_PATH for the frontends the tests start; the
kernels the tests start themselves come from tests/kernels.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernels import Kernels, remove_test_dirs, use_test_jupyter_dirs

use_test_jupyter_dirs()


@pytest.fixture
def kernels(tmp_path: Path) -> Iterator[Kernels]:
    """``kernels.start(*argv, **options)`` starts a kernel (tests.kernels.start_kernel) for this
    test; every one is closed, with its clients, when the test ends."""
    started = Kernels(tmp_path)
    yield started
    started.close()


def pytest_sessionfinish() -> None:
    remove_test_dirs()
