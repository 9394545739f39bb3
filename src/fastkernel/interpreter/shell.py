"""``get_ipython()``: a small shell object for code written against IPython's.

Libraries and notebooks call ``get_ipython()`` to find the kernel (ipywidgets, tqdm, matplotlib)
or to reach a handful of conveniences (``user_ns``, ``events``, ``set_next_input``,
``run_line_magic``). :class:`FastKernelShell` offers those and nothing more: any other attribute
raises an AttributeError naming what it has, so a missing feature fails where it is used.

The interpreter knows no messages: the kernel core sets :attr:`FastKernelShell.kernel` to an
object giving the comm manager and the current request (see ``fastkernel.ipycompat``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastkernel.interpreter import display as display_api
from fastkernel.interpreter import streams
from fastkernel.interpreter.tracebacks import user_traceback

if TYPE_CHECKING:
    from fastkernel.interpreter.core import Interpreter
    from fastkernel.interpreter.events import EventManager
    from fastkernel.interpreter.formatting import DisplayFormatter

ExcInfo = tuple[Any, Any, Any]


def _set_last(etype: Any, value: Any, tb: Any) -> None:
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value


def _target(parent: Any) -> Any:
    """The output target for a parent request given to ``set_parent``."""
    if not parent:
        return streams.CURRENT_CELL
    if not isinstance(parent, dict) or not isinstance(parent.get("header"), dict):
        raise TypeError(
            f"set_parent takes a request message (from get_parent()), not {type(parent).__name__}"
        )
    return parent


class DisplayPublisher:
    """``get_ipython().display_pub``: publish a ready MIME bundle, or clear the output.

    Sends through its own interpreter's display publisher (nothing without a kernel).
    """

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: str | None = None,  # IPython's, unused since IPython 4
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
    ) -> None:
        display_api.publish_bundle(self.interpreter, dict(data), metadata, transient, update)

    def clear_output(self, wait: bool = False) -> None:
        display_api.publish(self.interpreter, "clear_output", {"wait": bool(wait)})


class FastKernelShell:
    """What ``get_ipython()`` returns in a fastkernel kernel: one per interpreter."""

    colors = "neutral"  # IPython's colour scheme setting (sympy reads it)

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.kernel: Any = None  # set by the kernel core: comm_manager, get_parent()
        self.display_pub = DisplayPublisher(interpreter)
        self._config: Any = None

    def __repr__(self) -> str:
        return "<fastkernel get_ipython() shell>"

    def get_ipython(self) -> FastKernelShell:
        """The shell itself (``get_ipython`` in the user namespace is this method)."""
        return self

    def __getattr__(self, name: str) -> Any:
        # Only called for names the shell lacks; dunder lookups (copy, pickle) stay quiet.
        if name.startswith("__"):
            raise AttributeError(name)
        have = ", ".join(n for n in sorted({*dir(type(self)), *vars(self)}) if not n.startswith("_"))
        # name and obj: %load_ext tells an extension's need for a missing feature from other errors.
        message = f"fastkernel's get_ipython() shell has no attribute {name!r}; it has: {have}"
        raise AttributeError(message, name=name, obj=self)

    # -- namespace and state --------------------------------------------------

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.interpreter.namespace

    @property
    def user_global_ns(self) -> dict[str, Any]:
        return self.interpreter.namespace

    @property
    def display_formatter(self) -> DisplayFormatter:
        """IPython's: ``format(obj, include=None, exclude=None)``, ``formatters[mime]``, ..."""
        return self.interpreter.formatter

    @property
    def events(self) -> EventManager:
        return self.interpreter.events

    @property
    def execution_count(self) -> int:
        """The count the next cell will get: IPython counts the running cell before it runs."""
        return int(getattr(self.kernel, "execution_count", 0)) + 1

    @property
    def config(self) -> Any:
        """A traitlets Config (imported on first use) with an empty ``IPKernelApp`` section.

        ipykernel's shell has its application's config, where ``IPKernelApp`` is; libraries
        (polars, older tqdm) read ``'IPKernelApp' in get_ipython().config`` as "a kernel with a
        frontend that shows HTML and widgets", which this kernel is.
        """
        if self._config is None:
            from traitlets.config import Config

            self._config = Config({"IPKernelApp": {}})
        return self._config

    def ev(self, expr: str) -> Any:
        """Evaluate ``expr`` in the user namespace."""
        return eval(expr, self.user_ns)

    def ex(self, code: str) -> None:
        """Execute ``code`` in the user namespace."""
        exec(code, self.user_ns)

    def push(self, variables: Any, interactive: bool = True) -> None:
        """Put variables in the user namespace: a dict, or names (str or list) of the caller's."""
        if isinstance(variables, dict):
            self.user_ns.update(variables)
            return
        names = re.split(r"[\s,]+", variables.strip()) if isinstance(variables, str) else list(variables)
        frame = sys._getframe(1)
        scope = {**frame.f_globals, **frame.f_locals}
        for name in filter(None, names):
            if name not in scope:
                raise NameError(f"push: the caller has no variable named {name!r}")
            self.user_ns[name] = scope[name]

    # -- the current request ---------------------------------------------------

    def get_parent(self) -> dict[str, Any]:
        """The request that output here goes to (with "header"); {} outside a kernel."""
        return self.kernel.get_parent() if self.kernel is not None else {}

    @property
    def parent_header(self) -> dict[str, Any]:
        # ipykernel's shell keeps the whole parent request under this name; so does this one.
        return self.get_parent()

    def set_parent(self, parent: Any, *args: Any, **kwargs: Any) -> None:
        """Send output written from here on to the cell of ``parent`` (a request from :meth:`get_parent`).

        It holds for the calling thread or task until its code ends (in a cell: until the end
        of the cell); threads and tasks started afterwards inherit it. ``None`` or ``{}`` goes
        back to the cell running at the time of each write. ipykernel 7 also sets a global
        parent; fastkernel's targets are per thread and task (see docs/output.md).
        """
        streams.OUTPUT_TARGET.set(_target(parent))

    def set_thread_parent(self, parent: Any) -> Any:
        """Like :meth:`set_parent`, and return a token for :meth:`reset_thread_parent`."""
        return streams.OUTPUT_TARGET.set(_target(parent))

    def reset_thread_parent(self, token: Any) -> None:
        """Undo the :meth:`set_thread_parent` call that returned ``token`` (same thread or task)."""
        streams.OUTPUT_TARGET.reset(token)

    def set_next_input(self, text: str, replace: bool = False) -> None:
        """Ask the frontend to put ``text`` in the next input cell (once per cell, last wins)."""
        self.interpreter.add_payload({"source": "set_next_input", "text": text, "replace": replace})

    # -- errors -----------------------------------------------------------------

    def showtraceback(
        self,
        exc_tuple: ExcInfo | None = None,
        filename: str | None = None,
        tb_offset: int | None = None,
        exception_only: bool = False,
        running_compiled_code: bool = False,
    ) -> None:
        """Show an exception (default: the one being handled) as the cell's ``error`` output."""
        try:
            etype, value, tb = self._get_exc_info(exc_tuple)
        except ValueError:
            print("No traceback available to show.", file=sys.stderr)
            return
        if not isinstance(value, BaseException):
            value = etype(value)
        if value.__traceback__ is None and tb is not None:
            value = value.with_traceback(tb)
        self._showtraceback(etype, value, self.interpreter.format_exception(value).traceback)

    def _showtraceback(self, etype: Any, evalue: Any, stb: list[str]) -> None:
        """Publish ``stb``, the formatted traceback (IPython's hook, which rich.traceback replaces)."""
        content = {"ename": getattr(etype, "__name__", str(etype)), "evalue": str(evalue), "traceback": stb}
        if not display_api.publish(self.interpreter, "error", content):
            print("\n".join(stb), file=sys.stderr)  # no kernel: where a script shows it

    def _get_exc_info(self, exc_tuple: ExcInfo | None = None) -> ExcInfo:
        """The exception to show: ``exc_tuple``, the one being handled, or the last one shown.

        As in IPython it becomes ``sys.last_type``, ``sys.last_value``, ``sys.last_traceback``
        (so ``pdb.pm()`` finds it); ValueError if there is none.
        """
        etype, value, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
        if etype is None:
            etype = getattr(sys, "last_type", None)
            value, tb = getattr(sys, "last_value", None), getattr(sys, "last_traceback", None)
        if etype is None:
            raise ValueError("No exception to find")
        _set_last(etype, value, tb)
        return etype, value, tb

    def remember_error(self, exc: BaseException) -> None:
        """Make a cell's exception the last one: ``sys.last_value`` (``sys.last_exc``), its type,
        and its traceback from the first user frame (so ``pdb.pm()`` and ``%tb`` find the cell)."""
        _set_last(type(exc), exc, user_traceback(exc.__traceback__))

    def show_error(self, exc: BaseException, mode: str | None = None) -> None:
        """Show ``exc`` as an ``error`` output of the running cell, in ``mode`` (default: %xmode)."""
        self._showtraceback(type(exc), exc, self.interpreter.format_exception(exc, mode).traceback)

    def show_cell_error(self, exc: BaseException) -> bool:
        """Show a cell's exception with a replaced ``showtraceback``/``_showtraceback``, if any.

        ``rich.traceback.install()`` replaces them on the shell, as under IPython; the cell's
        error is then shown by them (from its first user frame) instead of as an ``error``
        output. Returns False when nothing replaced them, or the replacement failed.
        """
        if "showtraceback" not in vars(self) and "_showtraceback" not in vars(self):
            return False
        try:
            self.showtraceback((type(exc), exc, user_traceback(exc.__traceback__)), tb_offset=0)
        except Exception:
            return False
        return True

    def showsyntaxerror(self, filename: str | None = None, running_compiled_code: bool = False) -> None:
        self.showtraceback()

    # -- object help ----------------------------------------------------------------

    def object_inspect(self, oname: str, detail_level: int = 0) -> dict[str, Any]:
        """IPython's dict of facts about ``oname`` (a dotted name; ``found`` False if unknown)."""
        from fastkernel.interpreter.introspect import object_info
        from fastkernel.interpreter.livenames import resolve_dotted

        found, obj = resolve_dotted(oname.strip(), self.user_ns)
        return object_info(oname, found, obj, detail_level, self.interpreter.labels)

    def object_inspect_text(self, oname: str, detail_level: int = 0) -> str:
        """The text ``oname?`` shows (``??`` with ``detail_level`` 1); KeyError if there is no such name."""
        return self.object_inspect_mime(oname, detail_level)["text/plain"]

    def object_inspect_mime(
        self, oname: str, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        """``{"text/plain": ...}`` for ``oname``, as an inspect_reply's data; KeyError if unknown."""
        from fastkernel.interpreter.introspect import describe
        from fastkernel.interpreter.livenames import resolve_dotted

        found, obj = resolve_dotted(oname.strip(), self.user_ns)
        if not found:
            raise KeyError(oname)  # IPython's error for a name it cannot find
        return {"text/plain": describe(obj, detail_level, oname, self.interpreter.labels)}

    # -- GUI and matplotlib ---------------------------------------------------------

    def enable_gui(self, gui: str | None = None) -> None:
        """Accepted and ignored: the kernel runs no GUI event loop (matplotlib calls this)."""

    def enable_matplotlib(self, gui: str | None = None) -> tuple[str | None, str]:
        """Turn on fastkernel's inline matplotlib backend (ipympl's with ``widget``/``ipympl``)."""
        from fastkernel.interpreter import inlinefigures

        if gui in inlinefigures.WIDGET_NAMES:
            return gui, inlinefigures.enable_widget_backend()
        try:
            from fastkernel import mplinline  # imports matplotlib
        except ImportError:
            return gui, "agg"
        mplinline.enable()
        return "inline", mplinline.BACKEND

    # -- magics and the system shell (fastkernel's magics object, when present) -------

    def _magics(self, what: str) -> Any:
        magics = getattr(self.interpreter, "magics", None)
        if magics is None:
            raise NotImplementedError(f"{what} needs magics support, which this fastkernel does not have")
        return magics

    def run_line_magic(self, magic_name: str, line: str, _stack_depth: int = 1) -> Any:
        return self._magics("run_line_magic").run_line(magic_name, line)

    def run_cell_magic(self, magic_name: str, line: str, cell: str) -> Any:
        return self._magics("run_cell_magic").run_cell(magic_name, line, cell)

    def system(self, cmd: str) -> Any:
        return self._magics("system").system(cmd)

    def getoutput(self, cmd: str, split: bool = True, depth: int = 0) -> Any:
        return self._magics("getoutput").getoutput(cmd)

    def register_magic_function(
        self, func: Callable[..., Any], magic_kind: str = "line", magic_name: str | None = None
    ) -> None:
        """What IPython's ``@register_line_magic`` and ``@register_cell_magic`` call."""
        from fastkernel.interpreter.magics import registry

        name = magic_name or func.__name__
        if magic_kind not in ("line", "cell", "line_cell"):
            raise ValueError(f"magic_kind must be 'line', 'cell' or 'line_cell', got {magic_kind!r}")
        if magic_kind != "cell":  # a line_cell magic gets cell=None when used as a line magic
            call_line = (
                (lambda m, line: func(line, None))
                if magic_kind == "line_cell"
                else (lambda m, line: func(line))
            )
            registry.line_magic(name)(call_line)
        if magic_kind != "line":
            registry.cell_magic(name)(lambda m, line, cell: func(line, cell))

    def register_magics(self, *objs: Any) -> None:
        """Register IPython ``Magics`` classes or instances (``@magics_class``), as extensions do.

        Each one's ``magics`` table (``{"line": {name: method}, "cell": {...}}``) becomes
        fastkernel magics; a class is instantiated with ``shell=`` this shell.
        """
        from fastkernel.interpreter.magics import registry

        for obj in objs:
            instance = obj(shell=self) if isinstance(obj, type) else obj
            tables = getattr(instance, "magics", None)
            if not isinstance(tables, dict):
                raise TypeError(f"register_magics takes IPython Magics classes or instances, not {obj!r}")
            for name, method in tables.get("line", {}).items():
                registry.line_magic(name)(lambda m, line, method=method: method(line))
            for name, method in tables.get("cell", {}).items():
                registry.cell_magic(name)(lambda m, line, cell, method=method: method(line, cell))
