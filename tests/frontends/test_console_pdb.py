"""pdb in ``jupyter console``: breakpoint() prompts in the terminal, %debug after an error."""

from __future__ import annotations

import pytest

from tests.frontends.test_console import Console, plain, simple_console  # noqa: F401  # the fixture

pytestmark = pytest.mark.timeout(90)


def pdb_session(console: Console, answers: list[str], next_prompt: int) -> str:
    """Answer pdb's prompts in turn, wait for ``In [next_prompt]:``; return all that was printed
    (the console prints a cell's output as it arrives, so around the prompts in any order)."""
    printed = []
    for line in answers:
        console.child.expect_exact("(Pdb) ")
        printed.append(plain(console.child.before))
        console.child.sendline(line)
    console.prompt(next_prompt)
    return "".join([*printed, plain(console.child.before)])


def test_breakpoint_and_debug_magic_in_the_console(simple_console: Console) -> None:  # noqa: F811
    console = simple_console
    console.start()
    console.child.sendline("x = 20; breakpoint(); y = x + 1; print('y is', y)")
    printed = pdb_session(console, ["p x * 2", "c"], 2)
    assert "-> x = 20; breakpoint(); y = x + 1; print('y is', y)" in printed
    assert "40\n" in printed and "y is 21" in printed

    console.run("f = lambda v: 1 / v", 3)
    assert "ZeroDivisionError" in console.run("f(0)", 4)
    console.child.sendline("%debug")
    printed = pdb_session(console, ["p v + 7", "q"], 5)
    assert "-> f = lambda v: 1 / v" in printed and "7\n" in printed
    assert console.run("print('still here')", 6).strip() == "still here"

    console.run("%pdb on", 7)  # automatic post-mortem: the next error opens pdb by itself
    console.child.sendline("f(0)")
    printed = pdb_session(console, ["p v - 5", "q"], 8)
    assert "ZeroDivisionError" in printed and "-5\n" in printed
    console.run("%pdb off", 9)
    assert "ZeroDivisionError" in console.run("f(0)", 10)  # no pdb prompt this time
