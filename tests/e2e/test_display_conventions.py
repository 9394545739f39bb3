"""IPython's display calling conventions through a real kernel: what ipykernel sends for the same cells.

The expected messages were taken from ipykernel 7.4 (IPython 9) running the same cells
(docs/ipython.md, "Display formatters"). No IPython is imported by these cells.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.harness import KernelHarness


def shown(kernel: KernelHarness, code: str) -> list[tuple[str, Any]]:
    """(msg_type, content) of a successful cell's outputs; stream text as content."""
    run = kernel.execute(code)
    assert run.content["status"] == "ok", run.content
    out: list[tuple[str, Any]] = []
    for msg in run.iopub:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append((f"stream:{content['name']}", content["text"]))
        elif kind not in ("status", "execute_input"):
            out.append((kind, content))
    return out


def test_repr_mimebundle_gets_include_and_exclude(kernel: KernelHarness) -> None:
    define = (
        "class Both:\n"
        "    def _repr_mimebundle_(self, include, exclude):\n"  # required, as rich's are
        "        print('asked', include, exclude)\n"
        "        return {'text/html': '<b>b</b>', 'text/markdown': '*b*'}\n"
    )
    (printed, (kind, result)) = shown(kernel, define + "Both()")
    assert printed == ("stream:stdout", "asked None None\n")  # before the result it made
    assert kind == "execute_result" and set(result["data"]) == {"text/html", "text/markdown", "text/plain"}
    (printed, (kind, content)) = shown(
        kernel,
        "display(Both(), include=['text/html'], metadata={'text/html': {'a': 1}}, transient={'k': 'v'})",
    )
    assert printed == ("stream:stdout", "asked ['text/html'] None\n")
    assert kind == "display_data"
    assert content == {
        "data": {"text/html": "<b>b</b>"},  # include leaves text/plain out too, as in IPython
        "metadata": {"text/html": {"a": 1}},
        "transient": {"k": "v"},
    }
    (printed, (_, content)) = shown(kernel, "display(Both(), exclude=['text/html', 'text/plain'])")
    assert printed == ("stream:stdout", "asked None ['text/html', 'text/plain']\n")
    assert content["data"] == {"text/markdown": "*b*"}


def test_ipython_display_wins_and_there_is_no_execute_result(kernel: KernelHarness) -> None:
    define = (
        "class Itself:\n"
        "    def _ipython_display_(self):\n"
        "        display({'text/plain': 'from _ipython_display_'}, raw=True)\n"
        "    def _repr_html_(self):\n"
        "        return '<b>never</b>'\n"
    )
    assert shown(kernel, define + "itself = Itself()\nitself") == [
        ("display_data", {"data": {"text/plain": "from _ipython_display_"}, "metadata": {}, "transient": {}})
    ]
    ((_, result),) = shown(kernel, "_ is itself")  # still the cell's result, as in IPython
    assert result["data"]["text/plain"] == "True"
    outputs = shown(kernel, "display(Itself(), 'next')")
    assert [c["data"]["text/plain"] for _, c in outputs] == ["from _ipython_display_", "'next'"]
    # NotImplementedError: "use my MIME bundle" (ipywidgets and ipympl do this)
    declined = "class Declines:\n    def _ipython_display_(self):\n        raise NotImplementedError\n"
    ((kind, result),) = shown(
        kernel, declined + "    def _repr_html_(self):\n        return '<i>n</i>'\nDeclines()"
    )
    assert kind == "execute_result" and result["data"]["text/html"] == "<i>n</i>"


def test_repr_methods_return_data_and_metadata(kernel: KernelHarness) -> None:
    define = (
        "class Pair:\n"
        "    def _repr_png_(self):\n"
        "        return b'PNG', {'width': 3}\n"
        "    def _repr_json_(self):\n"
        "        return {'a': 1}, {'expanded': True}\n"
        "    def _repr_html_(self):\n"
        "        return None\n"
    )
    ((kind, result),) = shown(kernel, define + "Pair()")
    assert kind == "execute_result"
    assert set(result["data"]) == {"image/png", "application/json", "text/plain"}
    assert base64.b64decode(result["data"]["image/png"]) == b"PNG"
    assert result["data"]["application/json"] == {"a": 1}
    assert result["metadata"] == {"image/png": {"width": 3}, "application/json": {"expanded": True}}
    assert result["data"]["text/plain"].startswith("<__main__.Pair at 0x")  # IPython's, not repr()


def test_formatters_for_type_lookup_pop_and_text_plain_printers(kernel: KernelHarness) -> None:
    code = (
        "class Money:\n"
        "    def __init__(self, amount):\n"
        "        self.amount = amount\n"
        "f = get_ipython().display_formatter.formatters\n"
        "old = f['text/html'].for_type(Money, lambda m: f'<b>${m.amount}</b>')\n"
        "f['text/plain'].for_type(Money, lambda m, p, cycle: p.text(f'Money({m.amount})'))\n"
        "print(old, f['text/html'].lookup(Money(1))(Money(2)), Money in f['text/html'])\n"
        "Money(5)"
    )
    (printed, (_, result)) = shown(kernel, code)
    assert printed == ("stream:stdout", "None <b>$2</b> True\n")
    assert result["data"] == {"text/plain": "Money(5)", "text/html": "<b>$5</b>"}
    ((_, result),) = shown(kernel, "[Money(1), {'k': Money(2)}]")  # text/plain printers apply inside too
    assert result["data"] == {"text/plain": "[Money(1), {'k': Money(2)}]"}
    ((_, result),) = shown(kernel, "f['text/html'].pop(Money)\nMoney(6)")
    assert result["data"] == {"text/plain": "Money(6)"}
    code = (
        "f['text/latex'].for_type_by_name('decimal', 'Decimal', lambda d: f'${d}$')\n"
        "import decimal\n"
        "decimal.Decimal('1.5')"
    )
    ((_, result),) = shown(kernel, code)  # registered by name before the class was imported
    assert result["data"] == {"text/plain": "Decimal('1.5')", "text/latex": "$1.5$"}


def test_a_registration_beats_the_objects_own_bundle(kernel: KernelHarness) -> None:
    code = (
        "class Bundled:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'text/html': '<p>own</p>', 'text/markdown': 'own'}\n"
        "html = get_ipython().display_formatter.formatters['text/html']\n"
        "html.for_type(Bundled, lambda b: '<p>registered</p>')\n"
        "Bundled()"
    )
    ((_, result),) = shown(kernel, code)
    assert result["data"]["text/html"] == "<p>registered</p>" and result["data"]["text/markdown"] == "own"


def test_ipython_display_formatter_and_new_formatters(kernel: KernelHarness) -> None:
    code = (
        "class Handled: pass\n"
        "ip = get_ipython()\n"
        "ip.display_formatter.ipython_display_formatter.for_type(Handled, lambda h: print('handled'))\n"
        "Handled()"
    )
    assert shown(kernel, code) == [("stream:stdout", "handled\n")]
    code = (  # a library adds a MIME type of its own, as pandas does for its table schema
        "class Table:\n"
        "    def _repr_table_(self):\n"
        "        return {'rows': 2}\n"
        "class TableFormatter:\n"
        "    enabled = True\n"
        "    def __call__(self, obj):\n"
        "        method = getattr(obj, '_repr_table_', None)\n"
        "        return method() if method else None\n"
        "ip.display_formatter.formatters['application/vnd.table+json'] = TableFormatter()\n"
        "Table()"
    )
    ((_, result),) = shown(kernel, code)
    assert result["data"]["application/vnd.table+json"] == {"rows": 2}
    code = (  # a replaced text/plain formatter (rich.pretty.install does this)
        "plain = ip.display_formatter.formatters['text/plain']\n"
        "ip.display_formatter.formatters['text/plain'] = lambda obj: f'<<{obj!r}>>'\n"
        "try:\n"
        "    display(41 + 1)\n"
        "finally:\n"
        "    ip.display_formatter.formatters['text/plain'] = plain"
    )
    ((_, content),) = shown(kernel, code)
    assert content["data"] == {"text/plain": "<<42>>"}


def test_repr_pretty_and_ipythons_text_for_plain_objects(kernel: KernelHarness) -> None:
    code = (
        "class Pretty:\n"
        "    def _repr_pretty_(self, p, cycle):\n"
        "        with p.group(2, 'P<', '>'):\n"
        "            p.text('a'); p.breakable(); p.text('b')\n"
        "def f(x, y=2): pass\n"
        "class Plain: pass\n"
        "Pretty(), [Pretty()], f, Plain, int, ValueError('v')"
    )
    ((_, result),) = shown(kernel, code)
    text = result["data"]["text/plain"]
    assert text == (  # too long for one line: one item a line, as IPython lays it out
        "(P<a b>,\n [P<a b>],\n <function __main__.f(x, y=2)>,\n __main__.Plain,\n int,\n ValueError('v'))"
    )
    ((_, result),) = shown(kernel, "list(range(30))")
    assert result["data"]["text/plain"] == "[" + ",\n ".join(str(i) for i in range(30)) + "]"


def test_wrong_types_are_dropped_with_a_warning(kernel: KernelHarness) -> None:
    outputs = shown(kernel, "class Wrong:\n    def _repr_html_(self):\n        return 42\nWrong()")
    (kind, result) = next(o for o in outputs if o[0] == "execute_result")
    assert set(result["data"]) == {"text/plain"}
    assert "FormatterWarning: text/html formatter returned invalid type" in "".join(
        text for kind, text in outputs if kind == "stream:stderr"
    )


def test_get_ipython_is_a_builtin_for_library_code(kernel: KernelHarness) -> None:
    code = (
        "import types\n"
        "library = types.ModuleType('library')\n"  # a module's globals have no get_ipython
        "exec('def in_notebook():\\n    return get_ipython() is not None', library.__dict__)\n"
        "library.in_notebook(), 'IPKernelApp' in get_ipython().config"
    )
    ((_, result),) = shown(kernel, code)
    assert result["data"]["text/plain"] == "(True, True)"
