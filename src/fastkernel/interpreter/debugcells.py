"""What the visual debugger needs from the interpreter: cell files, variables, rich values.

While the debugger is on, each cell runs under the file name that the hash of its source
names (:class:`CellFiles`), and that file holds the source, so a breakpoint that JupyterLab
set in the cell's editor binds to the code that runs. JupyterLab computes the same name
itself from ``debugInfo``'s ``hashMethod`` (MurmurHash2 over the UTF-8 bytes), ``hashSeed``,
``tmpFilePrefix`` and ``tmpFileSuffix``.

:class:`VariableTree` answers ``inspectVariables`` and ``variables`` while nothing is
stopped (then debugpy has no frame to ask): the user namespace, and the children of
containers and objects, each under a reference number valid until the next inspection;
:func:`page` applies DAP's ``start``/``count`` paging, which debugpy ignores.

:func:`end_stepping` ends a step that ran past the end of the cell it started in;
:func:`trace_cells` keeps debugpy's tracer on cells' threads while the debugger is on, and
takes it off once it was turned off; :func:`release_settrace` gives pdb ``sys.settrace`` back.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from typing import Any

MURMUR_M = 0x5BD1E995
MASK32 = 0xFFFFFFFF
HASH_SEED = 0xC70F6907  # any fixed seed: debugInfo tells frontends which
CELL_SUFFIX = ".py"
# Names of the kernel's own in the namespace, and IPython's history names: not the user's variables.
HIDDEN_NAMES = frozenset(
    {
        "__name__",
        "__doc__",
        "__package__",
        "__loader__",
        "__spec__",
        "__annotations__",
        "__builtins__",
        "__builtin__",
        "__warningregistry__",
        "get_ipython",
        "exit",
        "quit",
        "In",
        "Out",
        "_oh",
        "_dh",
        "_ih",
        "_",
        "__",
        "___",
    }
)
_HISTORY_NAME = re.compile(r"^_(i{1,3}\d*|\d+)$|^__fastkernel")
MAX_VALUE_CHARS = 1000
MAX_CHILDREN = 300


def murmur2(text: str, seed: int = HASH_SEED) -> int:
    """MurmurHash2 (32 bits) of ``text``'s UTF-8 bytes: the ``Murmur2`` of JupyterLab's debugger."""
    data = text.encode("utf-8")
    length = len(data)
    h = (seed ^ length) & MASK32
    whole = length & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * MURMUR_M) & MASK32
        k ^= k >> 24
        k = (k * MURMUR_M) & MASK32
        h = ((h * MURMUR_M) & MASK32) ^ k
    tail = data[whole:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * MURMUR_M) & MASK32
    h ^= h >> 13
    h = (h * MURMUR_M) & MASK32
    return h ^ (h >> 15)


class CellFiles:
    """Cell sources as files named by their hash, in a private directory of this process."""

    def __init__(self, root: str | None = None) -> None:
        base = root or tempfile.gettempdir()
        self.directory = os.path.join(base, f"fastkernel_{os.getpid()}")
        self.prefix = self.directory + os.sep

    def path(self, source: str) -> str:
        return f"{self.prefix}{murmur2(source)}{CELL_SUFFIX}"

    def write(self, source: str) -> str:
        """Write ``source`` to its file (if it is not there yet); return the file's path."""
        path = self.path(source)
        if not os.path.exists(path):
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as out:
                out.write(source)
            os.replace(tmp, path)  # whole or absent: debugpy may read it at any time
        return path

    def remove_all(self) -> None:
        """Delete the directory and its files (at shutdown)."""
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)


def is_user_variable(name: str) -> bool:
    return name not in HIDDEN_NAMES and not _HISTORY_NAME.match(name)


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as err:  # a broken __repr__ is the user's; show that it failed
        text = f"<repr failed: {type(err).__name__}: {err}>"
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _children(value: Any) -> list[tuple[str, str, Any]] | None:
    """(name, evaluateName suffix, child) of a value worth expanding, else None."""
    if isinstance(value, (str, bytes, bytearray, int, float, complex, bool, type(None))):
        return None
    if isinstance(value, dict):
        return [(_short_repr(k), f"[{k!r}]", v) for k, v in list(value.items())[:MAX_CHILDREN]]
    if isinstance(value, (list, tuple)):
        return [(str(i), f"[{i}]", v) for i, v in enumerate(value[:MAX_CHILDREN])]
    if isinstance(value, (set, frozenset)):
        return [(str(i), "", v) for i, v in enumerate(list(value)[:MAX_CHILDREN])]
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and attributes:
        return [(k, f".{k}", v) for k, v in list(attributes.items())[:MAX_CHILDREN]]
    return None


class VariableTree:
    """DAP variables of a namespace and of what its values hold (see the module docstring)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self._refs: dict[int, tuple[str, Any]] = {}  # reference -> (evaluateName, value)
        self._namespace = namespace

    def top(self) -> list[dict[str, Any]]:
        """The user's variables, in the order they were defined."""
        for _ in range(3):  # a cell on the main thread may add a name meanwhile
            try:
                items = list(self._namespace.items())
                break
            except RuntimeError:
                continue
        else:
            items = []
        return [self._variable(name, name, value) for name, value in items if is_user_variable(name)]

    def children(self, reference: int) -> list[dict[str, Any]]:
        """The children of the value ``reference`` names ([] for an unknown reference)."""
        if reference not in self._refs:
            return []
        expression, value = self._refs[reference]
        return [
            self._variable(name, f"{expression}{suffix}" if suffix else "", child)
            for name, suffix, child in _children(value) or []
        ]

    def _variable(self, name: str, expression: str, value: Any) -> dict[str, Any]:
        reference = 0
        if _children(value):
            reference = len(self._refs) + 1
            self._refs[reference] = (expression, value)
        return {
            "name": name,
            "value": _short_repr(value),
            "type": type(value).__name__,
            "evaluateName": expression,
            "variablesReference": reference,
        }


def page(variables: list[dict[str, Any]], arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The page ``start``/``count`` asks for, which debugpy ignores: its groups ("special
    variables", ``len()``: no ``evaluateName`` of an item) come with the first page only."""
    start, count = arguments.get("start"), arguments.get("count")
    if not isinstance(start, int) and not isinstance(count, int):
        return variables
    start = start if isinstance(start, int) and start > 0 else 0
    items = [v for v in variables if str(v.get("evaluateName", "")).endswith("]")]
    groups = [v for v in variables if not str(v.get("evaluateName", "")).endswith("]")]
    end = start + count if isinstance(count, int) and count > 0 else len(items)
    return (groups if start == 0 else []) + items[start:end]


def loaded_modules() -> list[dict[str, Any]]:
    """DAP modules: the loaded modules that have a ``.py`` file, numbered in load order."""
    named = [(name, getattr(module, "__file__", None)) for name, module in list(sys.modules.items())]
    return [
        {"id": index, "name": name, "path": path}
        for index, (name, path) in enumerate(named)
        if isinstance(path, str) and path.endswith(".py")
    ]


def bundle_json(value: Any) -> str:
    """``value``'s MIME bundle and metadata as JSON text (evaluated in a stopped frame, where
    debugpy hands back a string, by ``richInspectVariables``)."""
    from fastkernel.interpreter import running

    interpreter = running.current()
    if interpreter is None:
        return json.dumps({"data": {"text/plain": _short_repr(value)}, "metadata": {}})
    data, metadata = interpreter.formatter.format(value)
    return json.dumps({"data": data, "metadata": metadata}, default=str)


def trace_cells(traced: bool) -> None:
    """(pre_execute, once debugpy was started) The cell's thread traced by debugpy or not.

    On while the visual debugger is on: again after an interrupt at a breakpoint (it raised
    KeyboardInterrupt inside debugpy's tracer, which Python then removed). Off once it was
    turned off (``disconnect``): cells run at full speed again. Another tracer (coverage) is
    left alone.
    """
    tracer = sys.gettrace()
    if traced and tracer is None:
        import debugpy

        debugpy.debug_this_thread()
    elif not traced and type(getattr(tracer, "__self__", tracer)).__module__.startswith(
        ("_pydevd", "pydevd")
    ):
        import debugpy

        debugpy.trace_this_thread(False)


def release_settrace() -> None:
    """(disconnect) ``sys.settrace`` is Python's own again: debugpy's pydevd wraps it to warn,
    on stderr, about any other tracer, which pdb's first stop after the debugger was turned
    off would show. A later ``initialize`` reuses pydevd, which traces without that wrapper."""
    tracing = sys.modules.get("pydevd_tracing")
    if tracing is not None:
        tracing.restore_sys_set_trace_func()


def end_stepping() -> bool:
    """(post_execute, while the visual debugger is on) A step that ran past the end of the
    cell ends with the cell (debugpy would stop at the first line of the next cell run).

    Returns True if the thread left a stop that nothing resumed (an interrupt at a breakpoint).
    """
    try:
        from _pydevd_bundle.pydevd_additional_thread_info import set_additional_thread_info
        from _pydevd_bundle.pydevd_constants import STATE_RUN
        from _pydevd_bundle.pydevd_thread_lifecycle import internal_run_thread
    except ImportError:  # debugpy's bundled pydevd, importable once debugpy is
        return False
    thread = threading.current_thread()
    info = set_additional_thread_info(thread)
    left_a_stop = info.pydev_state != STATE_RUN
    if info.pydev_step_cmd != -1 or left_a_stop:
        internal_run_thread(thread, set_additional_thread_info)
    return bool(left_a_stop)
