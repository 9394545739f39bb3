"""The display formatter in-process: IPython's formatter API and text/plain as IPython writes it."""

from __future__ import annotations

import collections
import os
import warnings
from typing import Any

import pytest

from fastkernel.interpreter.builtinprinters import quick_text
from fastkernel.interpreter.formatters import FormatterWarning, get_real_method
from fastkernel.interpreter.formatting import DisplayFormatter


def f(x: int, y: int = 2) -> None:
    pass


class Plain:
    pass


class WithRepr:
    def __repr__(self) -> str:
        return "WithRepr(\n  multi-line)"


class Pretty:
    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        with p.group(4, "Pretty(", ")"):
            for i in range(12):
                if i:
                    p.text(",")
                    p.breakable()
                p.text(f"item{i}")


class MyError(Exception):
    pass


class Sub(dict):  # type: ignore[type-arg]
    pass


plain, cyclic = Plain(), [1]
cyclic.append(cyclic)  # type: ignore[arg-type]
SAMPLES: list[Any] = [
    1,
    "text",
    None,
    [1, 2],
    list(range(30)),
    list(range(1200)),
    {"k": "v" * 80, "k2": [1, 2, 3]},
    {i: list(range(i)) for i in range(8)},
    (1,),
    ("a" * 90,),
    {3, 1, 2},
    frozenset({2, 1}),
    set(),
    [[1, 2] * 20],
    f,
    len,
    int,
    Plain,
    plain,
    [plain, f],
    WithRepr(),
    [WithRepr(), WithRepr()],
    Pretty(),
    [Pretty(), Pretty()],
    MyError("x", 2),
    ValueError("v"),
    collections.OrderedDict(a=1),
    collections.Counter("aab"),
    collections.defaultdict(list, a=[1]),
    collections.deque([1, 2]),
    Sub(a=1),
    range(3),
    b"ab",
    cyclic,
    os.environ,
]


@pytest.mark.parametrize("obj", SAMPLES, ids=[type(o).__name__ + str(i) for i, o in enumerate(SAMPLES)])
def test_text_plain_is_what_ipython_writes(obj: Any) -> None:
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert DisplayFormatter().format(obj)[0]["text/plain"] == pretty.pretty(obj)


@pytest.mark.parametrize("obj", SAMPLES, ids=[type(o).__name__ + str(i) for i, o in enumerate(SAMPLES)])
def test_the_quick_text_is_the_printers_text(obj: Any) -> None:
    text = quick_text(obj, 79, 1000)
    if text is not None:
        formatter = DisplayFormatter().formatters["text/plain"]
        formatter.for_type(type("Unrelated", (), {}), lambda o, p, cycle: None)  # no quick path
        assert formatter(obj) == text


def test_for_type_by_class_and_by_name_lookup_and_pop() -> None:
    html = DisplayFormatter().formatters["text/html"]
    assert html.for_type(Plain, lambda o: "<b>1</b>") is None
    first = html.lookup(plain)
    assert html.for_type(Plain, lambda o: "<b>2</b>") is first  # returns the one it replaces
    assert html.for_type(Plain) is not first and html(plain) == "<b>2</b>"  # None: only look up
    assert Plain in html and f"{__name__}.Plain" in html
    assert html.pop(Plain)(plain) == "<b>2</b>"
    with pytest.raises(KeyError):
        html.lookup(plain)
    assert html.pop(Plain, "gone") == "gone"
    html.for_type_by_name("collections", "OrderedDict", lambda o: "<i>od</i>")
    assert ("collections", "OrderedDict") in html.deferred_printers
    assert html(collections.OrderedDict()) == "<i>od</i>"  # and now registered by class
    assert collections.OrderedDict in html.type_printers and not html.deferred_printers
    html.for_type("fractions.Fraction", lambda o: "<i>fr</i>")  # a dotted name is a name
    assert html.pop("fractions.Fraction")(None) == "<i>fr</i>"


def test_methods_registrations_and_checks() -> None:
    formatter = DisplayFormatter()

    class Methods:
        def _repr_html_(self) -> str:
            return "<p>m</p>"

        def _repr_json_(self) -> str:
            return '{"a": 1}'  # a JSON string: parsed, with a warning, as IPython does

        def _repr_latex_(self) -> int:
            return 3  # the wrong type: dropped, with a warning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, _ = formatter.format(Methods())
    assert data["text/html"] == "<p>m</p>" and data["application/json"] == {"a": 1}
    assert "text/latex" not in data
    assert [w.category for w in caught] == [FormatterWarning, FormatterWarning]
    formatter.formatters["text/html"].enabled = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FormatterWarning)
        assert "text/html" not in formatter.format(Methods())[0]
    assert "text/html" not in formatter.active_types


def test_get_real_method_ignores_classes_and_objects_that_claim_everything() -> None:
    class Anything:
        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: "<b>?</b>"

    class WithClassMethod:
        @classmethod
        def _repr_html_(cls) -> str:
            return "<b>class</b>"

    assert get_real_method(Anything(), "_repr_html_") is None
    assert get_real_method(Pretty, "_repr_pretty_") is None  # an unbound method of a class
    assert get_real_method(WithClassMethod, "_repr_html_")() == "<b>class</b>"
    assert DisplayFormatter().format(Anything())[0].keys() == {"text/plain"}


def test_broken_printers_are_reported_and_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken:
        def _repr_html_(self) -> str:
            raise ValueError("no html")

        def _repr_markdown_(self) -> str:
            raise NotImplementedError  # "nothing for this type", quietly

    data, _ = DisplayFormatter().format(Broken())
    assert set(data) == {"text/plain"}
    assert capsys.readouterr().err == "Broken._repr_html_ raised ValueError: no html\n"
