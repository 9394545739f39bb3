"""History variables through a real kernel: _, __, ___, _N, _iN, _i, In, Out; Out bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import KernelHarness


def result_of(kernel: KernelHarness, code: str, **content: Any) -> tuple[int, str | None]:
    """Run ``code``; return its execution count and its execute_result's text/plain (or None)."""
    ex = kernel.execute(code, **content)
    assert ex.content["status"] == "ok", ex.content
    results = ex.of_type("execute_result")
    text = results[0]["content"]["data"]["text/plain"] if results else None
    return ex.content["execution_count"], text


def value(kernel: KernelHarness, expression: str) -> str:
    """``expression``'s repr, read through user_expressions so that no history is recorded."""
    ex = kernel.execute("", silent=True, user_expressions={"v": expression})
    found = ex.content["user_expressions"]["v"]
    assert found["status"] == "ok", found
    return str(found["data"]["text/plain"])


def test_underscore_and_numbered_names_hold_results(kernel: KernelHarness) -> None:
    count, text = result_of(kernel, "1+1")
    assert text == "2"
    assert result_of(kernel, "_")[1] == "2"
    assert value(kernel, f"_{count}") == "2"
    assert value(kernel, f"Out[{count}]") == "2"
    assert value(kernel, f"In[{count}]") == "'1+1'"
    assert value(kernel, f"_i{count}") == "'1+1'"


def test_underscores_are_the_last_three_results(kernel: KernelHarness) -> None:
    for code in ["'a'", "'b'", "'c'", "'d'"]:
        result_of(kernel, code)
    assert value(kernel, "(_, __, ___)") == "('d', 'c', 'b')"


def test_input_names_are_the_previous_cells(kernel: KernelHarness) -> None:
    result_of(kernel, "first_input = 1")
    result_of(kernel, "second_input = 2")
    count, text = result_of(kernel, "(_i, _ii, In[-1])")
    assert text == "('second_input = 2', 'first_input = 1', '(_i, _ii, In[-1])')"
    assert value(kernel, "len(In)") == str(count + 1)
    assert value(kernel, "In[0]") == "''"


def test_silent_and_unstored_cells_are_not_recorded(kernel: KernelHarness) -> None:
    result_of(kernel, "'kept'")
    result_of(kernel, "'silent'", silent=True)
    _, text = result_of(kernel, "'shown, not stored'", store_history=False)
    assert text == "'shown, not stored'"
    assert value(kernel, "_") == "'kept'"
    assert value(kernel, "'silent' in Out.values() or 'shown, not stored' in Out.values()") == "False"
    assert value(kernel, "any('silent' in source or 'not stored' in source for source in In)") == "False"


def test_a_failing_cell_is_in_in_but_not_in_out(kernel: KernelHarness) -> None:
    ex = kernel.execute("1/0")
    count = ex.content["execution_count"]
    assert value(kernel, f"In[{count}]") == "'1/0'"
    assert value(kernel, f"{count} in Out") == "False"


@pytest.fixture(scope="module")
def small_cache_kernel() -> Iterator[KernelHarness]:
    """A kernel whose Out keeps 3 results of at most 1 MB in all, set on its command line."""
    with KernelHarness.start(
        "--FastKernelApp.output_cache_entries=3", "--output-cache-bytes=1000000"
    ) as harness:
        yield harness


def test_out_keeps_only_the_configured_number_of_results(small_cache_kernel: KernelHarness) -> None:
    kernel = small_cache_kernel
    counts = [result_of(kernel, f"{n} * 10")[0] for n in range(5)]
    assert value(kernel, "sorted(Out)") == str(counts[-3:])
    assert value(kernel, f"'_{counts[1]}' in globals(), _{counts[2]}") == "(False, 20)"
    assert value(kernel, "(_, __, ___)") == "(40, 30, 20)"


def test_evicted_result_is_freed(small_cache_kernel: KernelHarness) -> None:
    kernel = small_cache_kernel
    result_of(kernel, "import gc, weakref\nclass Result: pass\nfirst = Result()\nref = weakref.ref(first)")
    result_of(kernel, "first")
    result_of(kernel, "del first")
    for n in range(3):  # pushes it out of Out and of _, __ and ___
        result_of(kernel, str(n))
    assert value(kernel, "(gc.collect(), ref())[1]") == "None"


def test_results_beyond_the_byte_bound_are_evicted(small_cache_kernel: KernelHarness) -> None:
    kernel = small_cache_kernel
    result_of(kernel, "class Buffer(bytearray):\n    def __repr__(self): return f'<{len(self)} bytes>'")
    first, text = result_of(kernel, "Buffer(600_000)")
    assert text == "<600000 bytes>"
    second, _ = result_of(kernel, "Buffer(600_000)")
    assert value(kernel, f"({first} in Out, {second} in Out)") == "(False, True)"
    huge, _ = result_of(kernel, "Buffer(2_000_000)")  # alone larger than the bound
    assert value(kernel, f"({huge} in Out, _, {second} in Out)") == "(False, <2000000 bytes>, True)"
