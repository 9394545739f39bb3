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
    "x = [\n    1,\n    2]",  # the statement starts at the left margin, its last line does not
    # Enter on the empty line after an indented block runs it (one blank line, as in IPython)
    "if x:\n    y = 1\n",
    "for i in range(3):\n    pass\n",
    "if True:\n    x = 1\n    ",  # what jupyter console sends: the auto-indent of the empty line
    "if x:\n\ty = 1\n\t",
    "if x:\n    y = 1\n  ",
    "def f():\n    return 1\n",
    "x = 1  # if:",
    'x = "#"  # a comment that ends with a colon:',
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
    ("if x:\n  y = 1", "  "),
    ("for x in y:\n\tx += 1", "\t"),
    ("def f():\n    if x:", "        "),
    ("if x:\n    y = f(a,\n          b)", "    "),  # the statement's indent, not its last line's
    # the colon that ends the statement counts, not one in a string or a comment
    ('if x == "#":', "    "),
    ("if x == ':' or y:  # note:", "    "),
    ("if (a and\n        b):", "    "),
    ("if x:\n\n", "    "),  # the block still needs a body
    # one step deeper is the cell's own step: two spaces, tabs
    ("if x:\n  if y:", "    "),
    ("if x:\n\tif y:", "\t\t"),
    # nothing after return/pass/raise/break/continue would run: back out of that block
    ("def f():\n    return 1", ""),
    ("def f():\n    return", ""),
    ("class A:\n    def f(self):\n        return 1", "    "),
    ("for i in x:\n    if i:\n        continue", "    "),
    ("while True:\n    break", ""),
    ("def f():\n    raise ValueError('no')", ""),
    ("try:\n    pass", ""),
    ("def f():\n    if x: return 1", "    "),  # a one-line if: the block of def goes on
    ("def f():\n    passed = 1", "    "),  # a name that merely starts with "pass"
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
    ("x = 1 + \\\n", ""),  # Enter after the backslash: still a prefix of valid code
    ("if x:\n    y = 1 + \\", "    "),
    ("def f():\n    return 1 + \\", "    "),
    ("x = 'abc\\\n", ""),  # a backslash-newline continues a one-line string too
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
    "if x:\n    y = 1\n    else:",  # no continuation makes this valid
    "x = 1 + \\\n\n",  # an empty line ends the continuation
    "x = )  # \\\n",  # a backslash in a comment continues nothing
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


def test_colon_after_hash_in_string_still_indents() -> None:
    assert is_complete('if x == "#":') == ("incomplete", "    ")


# Where the status deliberately differs from IPython's check_complete: IPython answers from
# tokens first and calls these incomplete (or complete), though no further text makes them
# valid Python (or fastkernel would not run them).
STATUS_DIFFERS_FROM_IPYTHON = {
    "def f(:": "the last token is a colon, but the parameter list cannot be completed",
    "if x:\n    y = 1\n    else:": "'else' inside the block it belongs after",
    "x = 1 + \\\n\n": "an empty line after a backslash ends the statement",
    "x = )  # \\\n": "the backslash is inside a comment",
    "  x = 1": "IPython strips the leading indentation before running; fastkernel does not",
}


@pytest.mark.parametrize("source", COMPLETE + [s for s, _ in INCOMPLETE] + INVALID)
def test_status_matches_ipython(source: str) -> None:
    """The console runs or continues exactly where IPython's would (statuses; indents differ)."""
    inputtransformer2 = pytest.importorskip("IPython.core.inputtransformer2")
    ipython_status, _ = inputtransformer2.TransformerManager().check_complete(source)
    if source in STATUS_DIFFERS_FROM_IPYTHON:
        assert ipython_status != "invalid" and is_complete(source)[0] == "invalid"
    else:
        assert is_complete(source)[0] == ipython_status
