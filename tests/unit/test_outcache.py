"""History variables: In, Out, _, __, ___, _N, _iN, _i, _ii, _iii; Out bounded; reset frees."""

from __future__ import annotations

import builtins
import gc
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from fastkernel.interpreter.outcache import OutputCache, estimate_size


class Big:
    """A result that can be weakly referenced, and that pins ``size`` bytes."""

    def __init__(self, size: int = 0) -> None:
        self.nbytes = size


def run(cache: OutputCache, count: int | None, source: str, result: Any = None) -> None:
    """What the kernel does for one cell: record its input, then its result (if any)."""
    cache.start_cell(count, source)
    if result is not None:
        cache.record_output(result)


def new_cache(**limits: int) -> tuple[OutputCache, dict[str, Any]]:
    namespace: dict[str, Any] = {}
    return OutputCache(namespace, **limits), namespace


def test_fresh_namespace_has_empty_history() -> None:
    cache, ns = new_cache()
    assert ns["In"] == [""]
    assert ns["Out"] == {}
    assert ns["In"] is ns["_ih"] and ns["Out"] is ns["_oh"]
    assert [ns[name] for name in ("_", "__", "___", "_i", "_ii", "_iii")] == [""] * 6


def test_result_is_in_underscore_out_and_numbered_name() -> None:
    cache, ns = new_cache()
    run(cache, 1, "1+1", 2)
    assert ns["_"] == 2
    assert ns["_1"] == 2
    assert ns["Out"] == {1: 2}
    assert ns["In"] == ["", "1+1"]
    assert ns["_i1"] == "1+1"


def test_underscores_keep_the_last_three_results() -> None:
    cache, ns = new_cache()
    for count in range(1, 5):
        run(cache, count, f"{count}", count * 10)
    assert (ns["_"], ns["__"], ns["___"]) == (40, 30, 20)


def test_cells_without_result_leave_underscores_alone() -> None:
    cache, ns = new_cache()
    run(cache, 1, "1", 1)
    run(cache, 2, "x = 5")
    assert ns["_"] == 1
    assert ns["Out"] == {1: 1}
    assert ns["In"] == ["", "1", "x = 5"]


def test_input_names_point_at_earlier_cells() -> None:
    cache, ns = new_cache()
    for count in range(1, 5):
        run(cache, count, f"cell {count}")
    # As in IPython: while cell 4 runs, _i is cell 3 and _i4 is cell 4 itself.
    assert (ns["_i"], ns["_ii"], ns["_iii"]) == ("cell 3", "cell 2", "cell 1")
    assert ns["_i4"] == ns["In"][4] == "cell 4"
    assert ns["In"][-1] == "cell 4"


def test_cells_that_store_no_history_are_not_recorded() -> None:
    cache, ns = new_cache()
    run(cache, 1, "1", 1)
    run(cache, None, "'silent'", "silent")
    assert ns["In"] == ["", "1"]
    assert ns["Out"] == {1: 1}
    assert ns["_"] == 1
    assert ns["_i"] == ""  # the previous stored cell is still "before cell 1"


def test_skipped_counts_leave_empty_inputs() -> None:
    cache, ns = new_cache()
    run(cache, 3, "third")
    assert ns["In"] == ["", "", "", "third"]


def test_oldest_results_are_evicted_beyond_max_entries() -> None:
    cache, ns = new_cache(max_entries=3)
    for count in range(1, 6):
        run(cache, count, f"{count}", count * 10)
    assert ns["Out"] == {3: 30, 4: 40, 5: 50}
    assert "_1" not in ns and "_2" not in ns
    assert (ns["_3"], ns["_4"], ns["_5"]) == (30, 40, 50)
    assert ns["In"][1] == "1"  # inputs are not evicted


def test_oldest_results_are_evicted_beyond_max_bytes() -> None:
    cache, ns = new_cache(max_bytes=1000)
    run(cache, 1, "a", Big(400))
    run(cache, 2, "b", Big(400))
    run(cache, 3, "c", Big(400))
    assert sorted(ns["Out"]) == [2, 3]
    assert "_1" not in ns
    assert cache.total_bytes <= 1000


def test_result_larger_than_max_bytes_is_only_in_underscore() -> None:
    cache, ns = new_cache(max_bytes=1000)
    small = Big(10)
    huge = Big(10_000)
    run(cache, 1, "small", small)
    run(cache, 2, "huge", huge)
    assert ns["_"] is huge
    assert ns["Out"] == {1: small}  # nothing else was evicted to make room
    assert "_2" not in ns


def test_evicted_result_is_freed_once_it_leaves_the_underscores() -> None:
    cache, ns = new_cache(max_entries=1)
    first = Big()
    ref = weakref.ref(first)
    run(cache, 1, "first", first)
    del first
    for count in range(2, 5):  # three more results push it out of _, __ and ___
        run(cache, count, str(count), count)
    gc.collect()
    assert ref() is None


def test_reset_frees_every_result() -> None:
    cache, ns = new_cache()
    value = Big()
    value.cycle = value  # type: ignore[attr-defined]  # only the garbage collector frees a cycle
    ref = weakref.ref(value)
    run(cache, 1, "value", value)
    run(cache, 2, "2", 2)
    del value
    out, inputs = ns["Out"], ns["In"]
    cache.reset()
    assert ref() is None
    assert ns["Out"] is out and out == {}
    assert ns["In"] is inputs and inputs == [""]
    assert not {"_1", "_2", "_i1", "_i2"} & set(ns)
    assert [ns[name] for name in ("_", "__", "___", "_i", "_ii", "_iii")] == [""] * 6
    assert cache.total_bytes == 0


def test_history_continues_after_reset() -> None:
    cache, ns = new_cache()
    run(cache, 1, "1", 1)
    cache.reset()
    run(cache, 2, "2", 2)
    assert ns["Out"] == {2: 2}
    assert ns["In"] == ["", "", "2"]
    assert (ns["_"], ns["__"]) == (2, "")


def test_reset_of_outputs_only_keeps_inputs() -> None:
    cache, ns = new_cache()
    run(cache, 1, "1", 1)
    cache.reset(inputs=False)
    assert ns["Out"] == {}
    assert ns["In"] == ["", "1"]
    assert ns["_i1"] == "1"


def test_user_assigned_underscore_is_not_overwritten() -> None:
    cache, ns = new_cache()
    run(cache, 1, "1", 1)
    ns["_"] = "translate"  # gettext-style: the user's own _ wins, as in IPython
    run(cache, 2, "2", 2)
    assert ns["_"] == "translate"
    assert ns["_2"] == 2 and ns["Out"][2] == 2
    del ns["_"]
    run(cache, 3, "3", 3)
    assert (ns["_"], ns["__"], ns["___"]) == (3, 2, 1)


def test_underscore_in_builtins_is_left_alone() -> None:
    cache, ns = new_cache()
    builtins._ = "gettext"  # type: ignore[attr-defined]  # what gettext.install() does
    try:
        run(cache, 1, "1", 1)
    finally:
        del builtins._  # type: ignore[attr-defined]
    assert ns["_"] == ""
    assert ns["_1"] == 1


def test_eviction_spares_a_numbered_name_the_user_rebound() -> None:
    cache, ns = new_cache(max_entries=1)
    run(cache, 1, "1", 1)
    ns["_1"] = "mine"
    run(cache, 2, "2", 2)
    assert ns["_1"] == "mine"
    assert ns["Out"] == {2: 2}


def test_zero_entries_records_no_results() -> None:
    cache, ns = new_cache(max_entries=0)
    run(cache, 1, "1", 1)
    assert ns["Out"] == {}
    assert ns["_"] == ""
    assert "_1" not in ns
    assert ns["In"] == ["", "1"]


def test_out_itself_is_not_stored_in_out() -> None:
    cache, ns = new_cache()
    run(cache, 1, "Out", ns["Out"])
    assert ns["Out"] == {}


def test_lowering_the_limits_evicts_at_once() -> None:
    cache, ns = new_cache()
    for count in range(1, 6):
        run(cache, count, str(count), count)
    cache.set_limits(max_entries=2, max_bytes=10**9)
    assert ns["Out"] == {4: 4, 5: 5}
    assert "_3" not in ns


# -- size estimate ---------------------------------------------------------------


def test_size_of_an_array_is_its_buffer() -> None:
    assert estimate_size(Big(10**9)) == 10**9


def test_size_of_a_container_counts_its_items() -> None:
    strings = ["x" * 1000 for _ in range(10)]
    assert estimate_size(strings) >= 10 * 1000
    mapping = {"key": b"v" * 5000}
    assert estimate_size(mapping) >= 5000
    assert estimate_size((Big(10**6),)) >= 10**6


def test_size_of_a_large_container_is_extrapolated() -> None:
    items = [b"x" * 100] * 100_000  # the same object each time: the estimate counts it per item
    estimate = estimate_size(items)
    assert 100_000 * 100 <= estimate <= 100_000 * 200 + sys.getsizeof(items)


class Hostile(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("user __iter__ ran")

    def __sizeof__(self) -> int:
        raise RuntimeError("broken __sizeof__")

    @property
    def nbytes(self) -> int:
        raise RuntimeError("broken nbytes")


def test_size_estimate_runs_no_user_iteration_and_survives_errors() -> None:
    assert estimate_size(Hostile([1, 2, 3])) > 0


@pytest.mark.parametrize("value", [True, None, 3.5, "text", object()])
def test_size_of_plain_objects_is_positive(value: Any) -> None:
    assert estimate_size(value) > 0
