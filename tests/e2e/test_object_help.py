"""get_ipython().object_inspect / object_inspect_text, and text/plain of containers as IPython shows it."""

from __future__ import annotations

import ast

import pytest

from tests.harness import KernelHarness, ok, result

pytestmark = pytest.mark.timeout(60)


def test_object_inspect_describes_a_function_an_instance_and_a_missing_name(kernel: KernelHarness) -> None:
    defined = ok(
        kernel, "def helper_oi(a, b=2):\n    '''Add things.'''\n    return a + b\nitems_oi = [1, 2, 3]"
    )
    info = ast.literal_eval(result(ok(kernel, "get_ipython().object_inspect('helper_oi')")))
    assert info["found"] is True and info["name"] == "helper_oi"
    assert info["definition"] == "helper_oi(a, b=2)" and info["docstring"] == "Add things."
    assert (
        info["type_name"] == "function" and info["file"] == f"Cell In[{defined.content['execution_count']}]"
    )
    assert info["ismagic"] is False and info["namespace"] == "Interactive"
    info = ast.literal_eval(result(ok(kernel, "get_ipython().object_inspect('items_oi')")))
    assert (info["type_name"], info["string_form"], info["length"]) == ("list", "[1, 2, 3]", "3")
    info = ast.literal_eval(result(ok(kernel, "get_ipython().object_inspect('no_such_name_oi')")))
    assert info["found"] is False and info["docstring"] is None


def test_object_inspect_text_is_what_the_question_mark_shows(kernel: KernelHarness) -> None:
    ok(kernel, "def shown_oi(x):\n    '''Show x.'''\n    return x")
    ex = ok(kernel, "print(get_ipython().object_inspect_text('shown_oi'))")
    text = ex.stream_text()
    assert text.startswith("Signature:       shown_oi(x)\nType:            function\n")
    assert text.rstrip().endswith("Docstring:       Show x.")
    ex = kernel.execute("get_ipython().object_inspect_text('no_such_name_oi')")
    assert ex.content["ename"] == "KeyError"


CONTAINERS = [
    "list(range(40))",
    "{f'key{i}': i for i in range(12)}",
    "{5, 3, 1, 'b', 'a', 4}",
    "frozenset({3, 1, 2})",
    "[{'a': [1, 2, 3] * 5, 'b': {'c': list(range(30))}}]",
    "{1: {2: {3: list(range(25))}}}",
    "[('a' * 30, 'b' * 30, 'c' * 30)]",
]


@pytest.mark.parametrize("expression", CONTAINERS)
def test_containers_text_plain_is_ipythons(kernel: KernelHarness, expression: str) -> None:
    from IPython.lib.pretty import pretty

    shown = result(ok(kernel, expression))
    assert shown == pretty(eval(expression))
    assert all(len(line) <= 79 for line in shown.splitlines())  # wrapped at IPython's width


def test_cycles_and_repr_pretty(kernel: KernelHarness) -> None:
    assert result(ok(kernel, "cyc_l = [1]\ncyc_l.append(cyc_l)\ncyc_l")) == "[1, [...]]"
    assert result(ok(kernel, "cyc_d = {}\ncyc_d['me'] = cyc_d\ncyc_d")) == "{'me': {...}}"
    ok(kernel, "class Pretty:\n    def _repr_pretty_(self, p, cycle):\n        p.text('<pretty!>')")
    assert result(ok(kernel, "[Pretty(), {'k': Pretty()}]")) == "[<pretty!>, {'k': <pretty!>}]"
