"""Run a function right after (or just before) a given module is first imported.

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

    def __init__(self, loader: Any, callbacks: list[Callback], before: list[Callback]) -> None:
        self._loader = loader
        self._callbacks = callbacks
        self._before = before

    def __getattr__(self, name: str) -> Any:
        # get_source, get_data, is_package, ...: a module may use its loader while it runs.
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        _run(self._before, module)
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _run(self._callbacks, module)


def _run(callbacks: list[Callback], module: ModuleType) -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception:  # a failed adaptation must never break the user's import
            log.exception("could not adapt module %s", module.__name__)


class AfterImport(importlib.abc.MetaPathFinder):
    """A meta path finder that calls ``callbacks[name](module)`` once ``name`` is imported.

    ``before[name]`` callbacks run when the module object exists, before its code runs.
    """

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callback]] = {}
        self.before: dict[str, list[Callback]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        callbacks = self.callbacks.pop(fullname, None) or []
        before = self.before.pop(fullname, None) or []
        if not callbacks and not before:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _NotifyingLoader(spec.loader, callbacks, before)
                return spec
        return None


_finder: AfterImport | None = None


def _pending(table: str, name: str, callback: Callback) -> Callable[[], None]:
    global _finder
    if _finder is None or _finder not in sys.meta_path:
        _finder = AfterImport()
        sys.meta_path.insert(0, _finder)
    pending = getattr(_finder, table).setdefault(name, [])
    pending.append(callback)

    def cancel() -> None:
        if callback in pending:
            pending.remove(callback)

    return cancel


def after_import(name: str, callback: Callback) -> Callable[[], None]:
    """Call ``callback(module)`` when ``name`` is imported, or now if it already is.

    Return a function that cancels a callback that has not run yet.
    """
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return lambda: None
    return _pending("callbacks", name, callback)


def before_import(name: str, callback: Callback) -> Callable[[], None]:
    """Call ``callback(module)`` when ``name`` is first imported, before its code runs.

    Nothing is called if it is imported already. Return a function that cancels the callback.
    """
    if name in sys.modules:
        return lambda: None
    return _pending("before", name, callback)
