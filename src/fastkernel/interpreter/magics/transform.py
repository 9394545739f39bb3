"""Rewrite magic syntax in a cell into plain Python calls, keeping every line where it was.

At the start of a statement (never inside brackets, strings or after a backslash):

- ``!cmd`` becomes ``MAGICS.shell('cmd')``, ``!!cmd`` ``MAGICS.getoutput('cmd')``;
- ``%name args`` becomes ``MAGICS.run_line('name', 'args')``;
- ``x = !cmd`` and ``x = %name args`` assign those calls' values;
- ``obj?``, ``?obj`` (detail 0) and ``obj??``, ``??obj`` (detail 1) become ``MAGICS.help(...)``.

A cell whose first non-blank line is ``%%name args`` becomes one ``MAGICS.run_cell`` call on
that line. Each rewritten line stays on its line (lines joined by a trailing backslash leave
blank lines behind), so tracebacks point at the user's own line numbers.

Only the standard library's ``re`` is used: this module is imported at kernel start.
"""

from __future__ import annotations

import re

MAGICS = "__fastkernel_magics__"  # the name the rewritten code calls, in the user namespace

# A cheap first test: can any line be magic syntax at all? Most cells are not.
_CANDIDATE = re.compile(
    r"^[ \t]*(?:[!%?]|[\w.]+(?:[ \t]*,[ \t]*[\w.]+)*[ \t]*=[ \t]*[!%])|\?[ \t]*\r?$", re.M
)
_NAME = r"[A-Za-z_][\w.]*"
_MAGIC = re.compile(r"%(%?\w+)(?:\s+(.*))?$", re.S)
_HELP = re.compile(rf"(\?\??)?\s*(%{{0,2}}\w+|{_NAME}(?:\[[^\]]*\])*)\s*(\?\??)?$")
_ASSIGN = re.compile(rf"({_NAME}(?:\s*,\s*{_NAME})*)\s*=\s*([!%])(.*)$", re.S)
_TOKENS = re.compile(r"""'''|\"\"\"|['"#\\()\[\]{}]""")


class _Scanner:
    """Just enough of Python's tokenizer to know whether a line starts a statement."""

    def __init__(self) -> None:
        self.depth = 0  # open brackets
        self.quote: str | None = None  # delimiter of the string open at the end of the line
        self.continued = False  # the line ended with a backslash

    @property
    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.continued

    def feed(self, line: str) -> None:
        """Advance over one physical line (without its newline)."""
        self.continued = False
        pos = 0
        while pos < len(line):
            if self.quote is not None:
                pos = self._string_end(line, pos)
                if pos < 0:
                    return
                continue
            match = _TOKENS.search(line, pos)
            if match is None:
                return
            token, pos = match.group(), match.end()
            if token == "#":
                return
            if token == "\\":
                self.continued = pos == len(line)
            elif token in "([{":
                self.depth += 1
            elif token in ")]}":
                self.depth = max(0, self.depth - 1)
            else:
                self.quote = token

    def _string_end(self, line: str, pos: int) -> int:
        """Index after the open string's end on this line, or -1 if it goes on past the line."""
        assert self.quote is not None
        while True:
            end = line.find(self.quote, pos)
            escape = line.find("\\", pos)
            if escape != -1 and (end == -1 or escape < end):
                pos = escape + 2  # an escaped character, maybe the quote itself
                if pos > len(line):  # a backslash-newline: the string goes on
                    return -1
                continue
            if end == -1:
                if len(self.quote) == 1:  # an unterminated 'string': a SyntaxError; carry on
                    self.quote = None
                return -1
            end += len(self.quote)
            self.quote = None
            return end


def _call(method: str, *args: object) -> str:
    return f"{MAGICS}.{method}({', '.join(repr(a) for a in args)})"


def _magic_call(text: str) -> str | None:
    """``%name args`` (without indentation) as a ``run_line`` call, or None."""
    match = _MAGIC.match(text)
    if match is None:
        return None
    return _call("run_line", match.group(1), (match.group(2) or "").strip())


def _escape_call(text: str) -> str | None:
    """``!cmd`` as ``shell``, ``!!cmd`` as ``getoutput``; ``%...`` as in :func:`_magic_call`."""
    if text.startswith("!!"):
        return _call("getoutput", text[2:].strip())
    if text.startswith("!"):
        return _call("shell", text[1:].strip())
    if text.startswith("%"):
        return _magic_call(text)
    return None


def rewrite_line(text: str) -> str | None:
    """The Python for one statement line of magic syntax, or None if it is not one."""
    indent = text[: len(text) - len(text.lstrip())]
    body = text.strip()
    help_match = _HELP.match(body)
    if help_match and (help_match.group(1) or help_match.group(3)):
        level = 1 if "??" in ((help_match.group(1) or "") + (help_match.group(3) or "")) else 0
        return indent + _call("help", help_match.group(2), level)
    call = _escape_call(body)
    if call is not None:
        return indent + call
    assign = _ASSIGN.match(body)
    if assign is not None:
        bang, rest = assign.group(2), assign.group(3).strip()
        value = _call("getoutput", rest) if bang == "!" else _magic_call("%" + rest)
        if value is not None:
            return f"{indent}{assign.group(1)} = {value}"
    return None


def cell_magic(source: str) -> tuple[int, str, str, str] | None:
    """``(line index, name, args, body)`` when the first non-blank line is ``%%name args``.

    As in IPython the body ends with a newline.
    """
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not lines[first].startswith("%%"):
        return None
    name, _, args = lines[first][2:].strip().partition(" ")
    body = "\n".join(lines[first + 1 :])
    if body and not body.endswith("\n"):
        body += "\n"
    return first, name, args.strip(), body


_LEADING_INDENT = re.compile(r"\A(?:[ \t]*\r?\n)*([ \t]+)\S")


def strip_leading_indent(source: str) -> str:
    """``source`` without the indentation of its first non-blank line, as IPython strips it.

    Code pasted from a function body or a docstring then runs. The prefix is removed from every
    line that starts with it (others are left alone, as in IPython, so a line indented less
    still fails to compile); line numbers do not change. The very same object when the first
    non-blank line is not indented.
    """
    match = _LEADING_INDENT.match(source)
    if match is None:
        return source
    prefix = match.group(1)
    cut = len(prefix)
    return "".join(line[cut:] if line.startswith(prefix) else line for line in source.splitlines(True))


def transform_cell(source: str) -> str:
    """``source`` with magic syntax rewritten; the very same object when there is none."""
    if not _CANDIDATE.search(source):
        return source
    found = cell_magic(source)
    if found is not None:
        first, name, args, body = found
        return "\n" * first + _call("run_cell", name, args, body, first + 1) + "\n"
    lines = source.split("\n")
    scanner = _Scanner()
    changed = False
    index = 0
    while index < len(lines):
        line = lines[index]
        text, cr = (line[:-1], "\r") if line.endswith("\r") else (line, "")
        new = rewrite_line(text) if scanner.at_statement_start else None
        if new is None:
            scanner.feed(text)
            index += 1
            continue
        start = index
        while text.endswith("\\") and index + 1 < len(lines):  # %magic a \ (newline) b: one line
            index += 1
            text = text[:-1] + lines[index].strip()
        new = rewrite_line(text) or new
        lines[start] = new + cr
        lines[start + 1 : index + 1] = [""] * (index - start)
        changed = True
        index += 1
    return "\n".join(lines) if changed else source
