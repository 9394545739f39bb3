"""The exec-based interpreter: compile a cell with ``ast``, run it in ``__main__``.

No sockets, no messages, no threads: the kernel core hands it source text and callbacks
and gets back an outcome.
"""

from __future__ import annotations
import __future__ as future_module

import ast
import builtins
import linecache
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastkernel.interpreter.formatting import Bundle, format_object
from fastkernel.interpreter.tracebacks import CellError, format_error

ResultHook = Callable[[Any], None]

_INTERNAL_FILES = frozenset({__file__})


@dataclass
class CellOutcome:
    """How a cell ended: ``error`` is None on success."""

    error: CellError | None = None
    payload: list[dict[str, Any]] = field(default_factory=list)


def _has_trailing_semicolon(source: str, node: ast.expr) -> bool:
    lines = source.splitlines()
    if node.end_lineno is None or node.end_col_offset is None:
        return False
    tail = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset :].decode("utf-8", "replace")
    rest = [tail, *lines[node.end_lineno :]]
    text = "\n".join(line.split("#", 1)[0] for line in rest).strip()
    return text.startswith(";")


class Interpreter:
    """Runs cells in a persistent namespace that is a real ``__main__`` module."""

    def __init__(self, on_result: ResultHook | None = None) -> None:
        self.module = types.ModuleType("__main__", doc="fastkernel user namespace")
        self.namespace: dict[str, Any] = self.module.__dict__
        self.namespace["__builtins__"] = builtins
        self.on_result = on_result or (lambda value: None)
        self.future_flags = 0
        self.labels: dict[str, str] = {}  # cell filename -> "Cell In[n]"
        self._cell_seq = 0
        self.executing = False  # True while user code is on the stack

    def install_as_main(self) -> None:
        """Register the namespace as ``sys.modules['__main__']`` so pickle finds classes."""
        sys.modules["__main__"] = self.module

    # -- compiling ---------------------------------------------------------

    def _register_source(self, source: str, label: str) -> str:
        self._cell_seq += 1
        filename = f"<cell-{self._cell_seq}>"
        lines = source.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        linecache.cache[filename] = (len(source), None, lines, filename)
        self.labels[filename] = label
        return filename

    def _flags(self) -> int:
        return self.future_flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

    def _collect_future_flags(self, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                for alias in node.names:
                    feature = getattr(future_module, alias.name, None)
                    if feature is not None:
                        self.future_flags |= feature.compiler_flag

    def compile_cell(self, source: str, filename: str) -> tuple[types.CodeType, types.CodeType | None]:
        """Return (body, last_expression) code objects; last is None when nothing displays."""
        tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST | self._flags(), dont_inherit=True)
        self._collect_future_flags(tree)
        last = None
        tail = tree.body[-1] if tree.body else None
        if isinstance(tail, ast.Expr) and not _has_trailing_semicolon(source, tail.value):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, filename, "exec", self._flags(), dont_inherit=True)
        last_code = compile(last, filename, "eval", self._flags(), dont_inherit=True) if last else None
        return body, last_code

    # -- running -----------------------------------------------------------

    def _run(self, code: types.CodeType) -> Any:
        result = eval(code, self.namespace)
        if code.co_flags & 0x80:  # CO_COROUTINE: the cell used top-level await
            result = self._await(result)
        return result

    def _await(self, coroutine: Any) -> Any:
        import asyncio  # only cells that use await pay for asyncio

        loop = getattr(self, "_loop", None)
        if loop is None:
            loop = self._loop = asyncio.new_event_loop()
        return loop.run_until_complete(coroutine)

    def run_cell(self, source: str, label: str = "Cell In[ ]", display: bool = True) -> CellOutcome:
        """Compile and run ``source``; the last expression's value goes to ``on_result``."""
        filename = self._register_source(source, label)
        outcome = CellOutcome()
        try:
            self.executing = True
            body, last = self.compile_cell(source, filename)
            self._run(body)
            if last is not None:
                value = self._run(last)
                if value is not None and display:
                    self.on_result(value)
        except BaseException as exc:  # user code may raise anything, even SystemExit
            self.executing = False
            outcome.error = self.format_exception(exc)
        finally:
            self.executing = False
        return outcome

    def format_exception(self, exc: BaseException) -> CellError:
        return format_error(exc, _INTERNAL_FILES, self.labels)

    def evaluate(self, expression: str) -> tuple[Bundle, Bundle]:
        """Evaluate one user expression and format its value (errors propagate)."""
        value = eval(
            compile(expression, "<user_expression>", "eval", self.future_flags, True), self.namespace
        )
        return format_object(value)

    def evaluate_all(self, expressions: dict[str, Any]) -> dict[str, Any]:
        """``user_expressions``: a MIME bundle per name, or an error dict for that name alone."""
        results: dict[str, Any] = {}
        for name, expression in expressions.items():
            try:
                if not isinstance(expression, str):
                    raise TypeError(f"user expression must be a string, got {type(expression).__name__}")
                data, metadata = self.evaluate(expression)
                results[name] = {"status": "ok", "data": data, "metadata": metadata}
            except BaseException as err:  # any failure is that expression's own result
                error = self.format_exception(err)
                results[name] = {
                    "status": "error",
                    "ename": error.ename,
                    "evalue": error.evalue,
                    "traceback": error.traceback,
                }
        return results
