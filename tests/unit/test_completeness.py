"""is_complete: what a console does when the user presses Enter (run, or continue with this indent)."""

from __future__ import annotations

import pytest

from fastkernel.interpreter.completeness import is_complete

COMPLETE = [
    "x = 1",
    "x = 1\n",
    "print('hello')",
    "x = 1;",
    "from __future__ import annotations",
    "if x:\n    y = 1\n\n",  # a block ended by a blank line
    "if x:\r\n    y = 1\r\n\r\n",
    "def f():\n    return 1\n\n\n",
    "s = '''a\nb'''",
    "x = [\n    1,\n    2,\n]",
]

INCOMPLETE = [
    # after a colon: one level deeper
    ("if x:", "    "),
    ("for i in range(3):", "    "),
    ("while True:  # forever", "    "),
    ("class A:", "    "),
    ("try:\n    pass\nexcept ValueError:", "    "),
    ("if x:\n    pass\nelse:", "    "),
    # inside an indented block: keep that block's indent until a blank line
    ("if x:\n    y = 1", "    "),
    ("if x:\n    y = 1\n", "    "),
    ("if x:\n  y = 1", "  "),
    ("for x in y:\n\tpass", "\t"),
    ("def f():\n    if x:", "        "),
    ("class A:\n    def f(self):\n        return 1", "        "),
    # open brackets
    ("f(1,", ""),
    ("x = [1,\n", ""),
    ("d = {", ""),
    ("if x:\n    y = [", "    "),
    # decorators
    ("@decorator", ""),
    ("@decorator(arg)\n", ""),
    ("class A:\n    @property", "    "),
    # backslash continuation
    ("x = 1 + \\", ""),
    ("if x:\n    y = 1 + \\", "    "),
    # open triple-quoted string
    ('s = """abc', ""),
    ("s = '''abc\ndef", ""),
    # async blocks at top level
    ("async with lock:", "    "),
    ("async for item in source():", "    "),
    ("async def f():\n    await g()", "    "),
]

INVALID = [
    "x = )",
    "def f(:",
    "1 +",
    "x = 'abc",
    "  x = 1",  # unexpected indent
    "return 1",  # outside a function
    "print 'hello'",
    "x === 1",
]


@pytest.mark.parametrize("source", COMPLETE)
def test_complete(source: str) -> None:
    assert is_complete(source) == ("complete", "")


@pytest.mark.parametrize("source, indent", INCOMPLETE)
def test_incomplete_with_indent(source: str, indent: str) -> None:
    assert is_complete(source) == ("incomplete", indent)


@pytest.mark.parametrize("source", INVALID)
def test_invalid(source: str) -> None:
    assert is_complete(source) == ("invalid", "")


@pytest.mark.parametrize("source", ["", "   ", "\n\n", " \t\n  \n"])
def test_blank_source_is_complete(source: str) -> None:
    assert is_complete(source) == ("complete", "")


@pytest.mark.parametrize(
    "source",
    ["await asyncio.sleep(0)", "x = await fetch()", "print(await f())", "async with lock:\n    pass\n\n"],
)
def test_top_level_await_is_complete(source: str) -> None:
    assert is_complete(source) == ("complete", "")


@pytest.mark.xfail(
    strict=True,
    reason="BUG: completeness._next_indent strips '# comments' with str.split('#'), so a '#' inside a "
    "string literal hides the trailing colon: 'if x == \"#\":' gets indent '' instead of '    '",
)
def test_colon_after_hash_in_string_still_indents() -> None:
    assert is_complete('if x == "#":') == ("incomplete", "    ")
