from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import KernelHarness


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    """One kernel per test module (startup costs); tests must not depend on each other's state."""
    harness = KernelHarness.start()
    yield harness
    harness.close()


@pytest.fixture
def fresh_kernel() -> Iterator[KernelHarness]:
    """A kernel of its own, for tests that interrupt, shut down or otherwise disturb it."""
    harness = KernelHarness.start()
    yield harness
    harness.close()
