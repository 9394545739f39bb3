"""``is_complete``: is this source ready to run, or should the console ask for more?

The rules follow IPython's (``TransformerManager.check_complete``), which jupyter console and
qtconsole users know: Enter runs a complete statement; inside an indented block it continues
the block until the user presses Enter on an empty (or whitespace-only) line. Where a rule
differs from IPython's, the docstring of :func:`next_indent` says why.
"""

from __future__ import annotations

import ast
import codeop
import io
import re
import tokenize
import warnings
from dataclasses import dataclass, field

from fastkernel.interpreter.magics.transform import cell_magic, transform_cell

INDENT = "    "
# Statements after which the rest of their block cannot run: the next line is dedented.
_BLOCK_ENDERS = frozenset({"return", "pass", "raise", "break", "continue"})
_SKIPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER})
_TRAILING_CONTINUATION = re.compile(r"\\\n[ \t\f]*\Z")


@dataclass
class _Scan:
    """What the tokenizer saw: the last logical line and the blocks open around it."""

    open: bool = False  # ended inside brackets, a string or a backslash continuation
    blocks: list[str] = field(default_factory=lambda: [""])  # indentation of each enclosing block
    first: tokenize.TokenInfo | None = None  # first token of the last logical line
    last: tokenize.TokenInfo | None = None  # last significant token
    unit: str = ""  # the first indentation step the source uses


def _scan(source: str) -> _Scan:
    """Tokenize ``source`` up to its end or its first error; comments and strings are real tokens."""
    scan = _Scan()
    blocks = [""]
    at_line_start = True
    text = source if source.endswith("\n") else source + "\n"
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.INDENT:
                blocks.append(tok.string)
                scan.unit = scan.unit or tok.string
            elif tok.type == tokenize.DEDENT:
                blocks.pop()
            elif tok.type == tokenize.NEWLINE:
                at_line_start = True
            elif tok.type not in _SKIPPED:
                if at_line_start:
                    scan.first, scan.blocks, at_line_start = tok, list(blocks), False
                scan.last = tok
    except (tokenize.TokenError, SyntaxError):  # SyntaxError: the C tokenizer of Python 3.12+
        scan.open = True
    return scan


def _last_line_indent(source: str) -> str:
    for line in reversed(source.splitlines()):
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return ""


def next_indent(source: str) -> str:
    """Indentation for the line after ``source``.

    - Inside brackets, a string or after a backslash: that of the last non-blank line.
    - After a colon that ends a statement (``if x:``, ``else:``): one step deeper than the
      statement's first line. The step is the source's own first indentation (tabs stay tabs),
      else four spaces; IPython always adds four spaces.
    - After ``return``, ``pass``, ``raise``, ``break`` or ``continue``: one block shallower,
      since nothing after them in their block would run (IPython before 7 did this; IPython
      7+ keeps the indent).
    - Otherwise: that of the last statement.
    """
    scan = _scan(source)
    if scan.open or scan.first is None or scan.last is None:
        return _last_line_indent(source)
    if scan.last.type == tokenize.OP and scan.last.string == ":":
        return scan.blocks[-1] + (scan.unit or INDENT)
    if scan.first.type == tokenize.NAME and scan.first.string in _BLOCK_ENDERS:
        return scan.blocks[-2] if len(scan.blocks) > 1 else ""
    return scan.blocks[-1]


def _compile_command(source: str) -> object:
    compiler = codeop.CommandCompiler()  # fresh each time: it remembers __future__ flags
    compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compiler(source, "<is_complete>", "exec")


def _parse_status(source: str) -> str:
    """complete, incomplete or invalid, as the Python parser sees it."""
    try:
        code = _compile_command(source)
    except (SyntaxError, OverflowError, ValueError):
        # codeop calls a backslash-newline at the end an error, though more text would continue
        # it; without the newline it judges the backslash right (in a comment it continues nothing).
        if _TRAILING_CONTINUATION.search(source):
            return _parse_status(source[: source.rindex("\\") + 1])
        return "invalid"
    return "complete" if code is not None else "incomplete"


def _ends_inside_block(source: str) -> bool:
    """True when the last statement is indented and no line break follows it yet."""
    if "\n" in source[len(source.rstrip()) :]:
        return False
    return len(_scan(source).blocks) > 1


def is_complete(source: str) -> tuple[str, str]:
    """Return ``(status, indent)``: status is complete, incomplete or invalid.

    A valid indented block stays incomplete until a line break follows its last line: the
    console sends the block plus the auto-indented empty line when Enter is pressed there.
    """
    source = source.replace("\r\n", "\n")
    if not source.strip():
        return "complete", ""
    if cell_magic(source) is not None:  # %%magic: ends at a blank line, as in IPython
        lines = source.splitlines()
        return ("complete", "") if not lines[-1].strip() else ("incomplete", _last_line_indent(source))
    source = transform_cell(source)  # !cmd, %magic and obj? lines become calls on the same lines
    status = _parse_status(source)
    if status == "incomplete" or (status == "complete" and _ends_inside_block(source)):
        return "incomplete", next_indent(source)
    return status, ""
