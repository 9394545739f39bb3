"""Input and output history variables: ``In``, ``Out``, ``_``, ``__``, ``___``, ``_N``, ``_iN``, ``_i``.

They behave as in IPython, with one difference: ``Out`` (and the ``_N`` names that mirror
it) is bounded by a number of entries and by an estimated total size, so a large result is
not pinned in memory for the rest of the session. The oldest entries are evicted first.
"""

from __future__ import annotations

import builtins
import gc
import itertools
import sys
import threading
from collections.abc import Iterable
from typing import Any

DEFAULT_MAX_ENTRIES = 1000  # IPython's default cache_size
DEFAULT_MAX_BYTES = 512 * 2**20
_SAMPLE = 256  # container items measured; the rest are extrapolated from them
_UNDERS = ("_", "__", "___")
_INPUT_NAMES = ("_i", "_ii", "_iii")


def _own_size(value: Any) -> int:
    """``sys.getsizeof``, or the buffer size of an array (``nbytes``) when that is larger.

    A numpy view's ``getsizeof`` leaves out the data it keeps alive; ``nbytes`` counts it.
    """
    try:
        size = sys.getsizeof(value)
    except Exception:  # a broken __sizeof__ must not break the cell
        size = 64
    try:
        nbytes = getattr(value, "nbytes", None)
    except Exception:  # a property of user code may raise anything
        nbytes = None
    if isinstance(nbytes, int) and not isinstance(nbytes, bool):
        size = max(size, nbytes)
    return size


def _items(value: Any) -> tuple[Iterable[Any], int] | None:
    """The items of a builtin container (through the base type, so no user ``__iter__`` runs)."""
    if isinstance(value, dict):
        return itertools.chain.from_iterable(dict.items(value)), 2 * len(value)
    bases: tuple[type[Any], ...] = (list, tuple, set, frozenset)
    for base in bases:
        if isinstance(value, base):
            return base.__iter__(value), len(value)
    return None


def estimate_size(value: Any) -> int:
    """Bytes that keeping ``value`` pins, estimated cheaply.

    The value itself (``sys.getsizeof``, or ``nbytes`` for arrays), plus for a list, tuple,
    set, frozenset or dict one level of its items (keys and values); for large containers the
    first items are measured and the rest extrapolated. Deeper nesting and objects that
    reference others through attributes are under-counted: the entry count still bounds them.
    """
    size = _own_size(value)
    found = _items(value)
    if found is None:
        return size
    items, count = found
    sample = [_own_size(item) for item in itertools.islice(items, _SAMPLE)]
    if sample:
        size += sum(sample) * count // len(sample)
    return size


class OutputCache:
    """The history variables of one namespace, with ``Out`` bounded.

    Parameters
    ----------
    namespace
        The user namespace the variables live in.
    max_entries
        Most results kept in ``Out``; 0 records no results at all (not even ``_``), as
        IPython's ``cache_size = 0`` does.
    max_bytes
        Most estimated bytes (:func:`estimate_size`) kept in ``Out``. A result larger than
        this on its own is displayed and kept in ``_`` but not added to ``Out``.
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.namespace = namespace
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.inputs: list[str] = [""]  # In: In[n] is the source of cell n
        self.outputs: dict[int, Any] = {}  # Out, oldest first
        self.sizes: dict[int, int] = {}
        self.total_bytes = 0
        self._cell = threading.local()  # per thread: subshells run cells concurrently
        self._recent_inputs = ["", "", "", ""]  # this cell, _i, _ii, _iii
        self._unders: list[Any] = ["", "", ""]  # the last three results
        self._bound: list[Any] = ["", "", ""]  # what we last bound to _, __, ___
        namespace.update(In=self.inputs, Out=self.outputs, _ih=self.inputs, _oh=self.outputs)
        self._bind_unders()
        self._bind_inputs()

    @property
    def current(self) -> int | None:
        """The count of the cell running on this thread, when it stores history."""
        count: int | None = getattr(self._cell, "count", None)
        return count

    @current.setter
    def current(self, count: int | None) -> None:
        self._cell.count = count

    # -- inputs ---------------------------------------------------------------

    def start_cell(self, count: int | None, source: str) -> None:
        """A cell starts: record its source as ``In[count]``; None means it stores no history."""
        self.current = count
        if count is None:
            return
        if len(self.inputs) <= count:  # counts skipped (after a reset, say) leave empty inputs
            self.inputs.extend([""] * (count + 1 - len(self.inputs)))
        self.inputs[count] = source
        self._recent_inputs = [source, *self._recent_inputs[:3]]
        self.namespace[f"_i{count}"] = source
        self._bind_inputs()

    def _bind_inputs(self) -> None:
        # As in IPython, _i is the cell before the running one, whose source is _iN.
        self.namespace.update(zip(_INPUT_NAMES, self._recent_inputs[1:], strict=True))

    # -- outputs --------------------------------------------------------------

    def record_output(self, value: Any) -> None:
        """The running cell's result: update ``_``, ``__``, ``___`` and add ``Out[n]``, ``_n``."""
        if self.current is None or self.max_entries <= 0 or value is self.outputs:
            return
        user_owned = self._user_owns_unders()
        self._unders = [value, *self._unders[:2]]
        if not user_owned:
            self._bind_unders()
        self._store(self.current, value)

    def _user_owns_unders(self) -> bool:
        """True when the user rebound ``_``, ``__`` or ``___`` (gettext's ``_``, say): keep theirs."""
        if "_" in builtins.__dict__:
            return True
        return any(
            name in self.namespace and self.namespace[name] is not ours
            for name, ours in zip(_UNDERS, self._bound, strict=True)
        )

    def _bind_unders(self) -> None:
        self._bound = list(self._unders)
        self.namespace.update(zip(_UNDERS, self._bound, strict=True))

    def _store(self, count: int, value: Any) -> None:
        self._drop(count)  # a count recorded twice keeps its latest value
        size = estimate_size(value)
        if size > self.max_bytes:
            return
        self.outputs[count] = value
        self.sizes[count] = size
        self.total_bytes += size
        self.namespace[f"_{count}"] = value
        self._evict()

    def _evict(self) -> None:
        while self.outputs and (len(self.outputs) > self.max_entries or self.total_bytes > self.max_bytes):
            self._drop(next(iter(self.outputs)))

    def _drop(self, count: int) -> None:
        if count not in self.outputs:
            return
        value = self.outputs.pop(count)
        self.total_bytes -= self.sizes.pop(count)
        name = f"_{count}"
        if self.namespace.get(name) is value:  # a name the user rebound is theirs
            del self.namespace[name]

    def set_limits(self, max_entries: int, max_bytes: int) -> None:
        """Change the bounds; entries beyond the new ones are evicted at once."""
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._evict()

    # -- reset ----------------------------------------------------------------

    def reset(self, inputs: bool = True, outputs: bool = True) -> None:
        """Forget the history (``%reset``): release every result so its memory can be freed.

        ``In`` and ``Out`` stay the same objects, emptied, so references to them stay valid.
        """
        if outputs:
            for count in list(self.outputs):
                self._drop(count)
            for name, ours in zip(_UNDERS, self._bound, strict=True):
                if self.namespace.get(name) is ours:  # a name the user rebound is theirs
                    self.namespace[name] = ""
            self._unders = ["", "", ""]
            self._bound = ["", "", ""]
        if inputs:
            for count, source in enumerate(self.inputs):
                if self.namespace.get(f"_i{count}") is source:
                    del self.namespace[f"_i{count}"]
            del self.inputs[1:]
            self._recent_inputs = ["", "", "", ""]
            self._bind_inputs()
        gc.collect()  # results in reference cycles are freed now, not at some later collection
