"""Run a function right after a given module is first imported.

The kernel adapts a few stdlib modules (multiprocessing) that most sessions never import.
Importing them at start would slow every kernel down; patching them after the cell that
imports them would be too late for that same cell. A ``sys.meta_path`` finder is only asked
about modules that are not imported yet, so it costs nothing for the imports that are.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

log = logging.getLogger("fastkernel")

Callback = Callable[[ModuleType], None]


class _NotifyingLoader(importlib.abc.Loader):
    """Wraps a module's loader for one import, then puts the real loader back."""

    def __init__(self, loader: Any, callbacks: list[Callback]) -> None:
        self._loader = loader
        self._callbacks = callbacks

    def __getattr__(self, name: str) -> Any:
        # get_source, get_data, is_package, ...: a module may use its loader while it runs.
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        for callback in self._callbacks:
            try:
                callback(module)
            except Exception:  # a failed adaptation must never break the user's import
                log.exception("could not adapt module %s", module.__name__)


class AfterImport(importlib.abc.MetaPathFinder):
    """A meta path finder that calls ``callbacks[name](module)`` once ``name`` is imported."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callback]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        callbacks = self.callbacks.pop(fullname, None)
        if not callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _NotifyingLoader(spec.loader, callbacks)
                return spec
        return None


_finder: AfterImport | None = None


def after_import(name: str, callback: Callback) -> Callable[[], None]:
    """Call ``callback(module)`` when ``name`` is imported, or now if it already is.

    Return a function that cancels a callback that has not run yet.
    """
    global _finder
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return lambda: None
    if _finder is None or _finder not in sys.meta_path:
        _finder = AfterImport()
        sys.meta_path.insert(0, _finder)
    pending = _finder.callbacks.setdefault(name, [])
    pending.append(callback)

    def cancel() -> None:
        if callback in pending:
            pending.remove(callback)

    return cancel
