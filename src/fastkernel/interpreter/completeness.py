"""``is_complete``: is this source ready to run, or should the console ask for more?"""

from __future__ import annotations

import ast
import codeop
import warnings

INDENT = "    "


def _leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _last_code_line(source: str) -> str:
    for line in reversed(source.splitlines()):
        if line.strip():
            return line
    return ""


def _next_indent(source: str) -> str:
    """Indentation for the line after ``source``: one level deeper after a colon."""
    last = _last_code_line(source)
    indent = _leading_ws(last)
    code = last.split("#", 1)[0].rstrip()
    if code.endswith(":"):
        indent += INDENT
    return indent


def _compile_command(source: str) -> object:
    compiler = codeop.CommandCompiler()  # fresh each time: it remembers __future__ flags
    compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compiler(source, "<is_complete>", "exec")


def is_complete(source: str) -> tuple[str, str]:
    """Return ``(status, indent)``: status is complete, incomplete or invalid."""
    if not source.strip():
        return "complete", ""
    try:
        code = _compile_command(source)
    except (SyntaxError, OverflowError, ValueError):
        return "invalid", ""
    if code is None:
        return "incomplete", _next_indent(source)
    # Valid already, but a console user typing an indented block ends it with a blank line.
    lines = source.split("\n")
    ends_with_blank_line = len(lines) >= 2 and not lines[-1].strip() and not lines[-2].strip()
    if _leading_ws(_last_code_line(source)) and not ends_with_blank_line:
        return "incomplete", _next_indent(source)
    return "complete", ""
