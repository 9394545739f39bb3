from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import KernelHarness


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    """One kernel per test module (startup costs); tests must not depend on each other's state."""
    with KernelHarness.start() as harness:
        yield harness


@pytest.fixture
def fresh_kernel() -> Iterator[KernelHarness]:
    """A kernel of its own, for tests that interrupt, shut down or otherwise disturb it."""
    with KernelHarness.start() as harness:
        yield harness
