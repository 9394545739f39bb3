"""get_ipython() in-process: the shell on a bare interpreter, and the IPython adapters on stand-ins."""

from __future__ import annotations

import contextvars
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from fastkernel import ipycompat
from fastkernel.interpreter import running
from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.shell import FastKernelShell
from fastkernel.interpreter.streams import CURRENT_CELL, output_target, output_to
from fastkernel.runtime import Runtime


@pytest.fixture
def interp() -> Interpreter:
    return Interpreter()


@pytest.fixture
def sent(interp: Interpreter) -> list[tuple[str, dict[str, Any], Any]]:
    log: list[tuple[str, dict[str, Any], Any]] = []
    interp.publish_display = lambda t, c, target: log.append((t, c, target))  # as a kernel's would
    return log


@pytest.fixture
def as_running(interp: Interpreter) -> Iterator[None]:
    """``interp`` is the running interpreter, as install_as_main makes it (nothing else installed)."""
    running.set_current(interp)
    yield
    running.set_current(None)


def run(interp: Interpreter, source: str) -> Any:
    outcome = interp.run_cell(source, "Cell In[1]")
    assert outcome.error is None, outcome.error.traceback
    return outcome


def test_get_ipython_is_in_the_namespace_and_returns_one_shell(interp: Interpreter) -> None:
    run(interp, "ip = get_ipython(); same = ip is get_ipython()")
    ip = interp.namespace["ip"]
    assert ip is interp.shell and interp.namespace["same"]
    assert type(ip).__name__ == "FastKernelShell"
    assert ip.user_ns is interp.namespace and ip.user_global_ns is interp.namespace
    assert ip.events is interp.events
    assert ip.get_parent() == {} and ip.kernel is None  # no kernel core here


def test_unknown_attribute_names_the_shell_and_what_it_has(interp: Interpreter) -> None:
    ip = interp.shell
    with pytest.raises(
        AttributeError, match="fastkernel's get_ipython\\(\\) shell has no attribute 'magic'"
    ) as info:
        ip.magic  # noqa: B018
    assert "user_ns" in str(info.value) and "showtraceback" in str(info.value)
    assert getattr(ip, "history_manager", None) is None
    assert not hasattr(ip, "has_trait")


def test_ev_ex_push(interp: Interpreter) -> None:
    ip = interp.shell
    ip.ex("a = 20")
    assert ip.ev("a + 1") == 21
    ip.push({"b": 2})
    local_name = "pushed"  # noqa: F841  # pushed by name, from this frame
    ip.push("local_name")
    assert interp.namespace["b"] == 2 and interp.namespace["local_name"] == "pushed"
    with pytest.raises(NameError):
        ip.push(["nowhere"])


def test_set_next_input_once_per_cell_last_wins(interp: Interpreter) -> None:
    outcome = run(
        interp, "get_ipython().set_next_input('one')\nget_ipython().set_next_input('two', replace=True)"
    )
    assert outcome.payload == [{"source": "set_next_input", "text": "two", "replace": True}]
    interp.shell.set_next_input("between cells")  # no reply to carry it: dropped, no error
    assert run(interp, "1").payload == []


def test_showtraceback_publishes_an_error_like_a_cell_error(interp: Interpreter, sent: Any) -> None:
    run(interp, "try:\n    1 / 0\nexcept Exception:\n    get_ipython().showtraceback()")
    ((msg_type, content, _),) = sent
    assert msg_type == "error"
    assert content["ename"] == "ZeroDivisionError" and content["evalue"] == "division by zero"
    assert any("Cell In[1], line 2" in line for line in content["traceback"])
    assert not any("fastkernel" in line for line in content["traceback"])  # kernel frames hidden


def test_showtraceback_with_exc_tuple_and_without_exception(
    interp: Interpreter, sent: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        raise KeyError("k")
    except KeyError as err:
        exc = (type(err), err, err.__traceback__)
    interp.shell.showtraceback(exc, tb_offset=0)
    assert sent[0][0] == "error" and sent[0][1]["ename"] == "KeyError"
    assert sys.last_value is exc[1]  # as in IPython (pdb.pm() finds it)
    interp.shell.showtraceback()  # nothing being handled: the last one shown, as in IPython
    assert len(sent) == 2 and sent[1][1]["evalue"] == "'k'"
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        monkeypatch.delattr(sys, name, raising=False)
    interp.shell.showtraceback()
    assert len(sent) == 2 and "No traceback" in capsys.readouterr().err


def test_display_pub_and_formatter(interp: Interpreter, sent: Any) -> None:
    ip = interp.shell
    ip.display_pub.publish({"text/plain": "x"}, metadata={"a": 1}, transient={"display_id": "q"})
    ip.display_pub.publish({"text/plain": "y"}, transient={"display_id": "q"}, update=True)
    ip.display_pub.clear_output(wait=True)
    assert [(t, c) for t, c, _ in sent] == [
        (
            "display_data",
            {"data": {"text/plain": "x"}, "metadata": {"a": 1}, "transient": {"display_id": "q"}},
        ),
        (
            "update_display_data",
            {"data": {"text/plain": "y"}, "metadata": {}, "transient": {"display_id": "q"}},
        ),
        ("clear_output", {"wait": True}),
    ]

    class Rich:
        def _repr_html_(self) -> str:
            return "<b>r</b>"

        def _repr_markdown_(self) -> str:
            return "**r**"

    data, _ = ip.display_formatter.format(Rich(), exclude=["text/markdown"])
    assert set(data) == {"text/html", "text/plain"}
    data, _ = ip.display_formatter.format(Rich(), include=["text/markdown"])
    assert set(data) == {"text/markdown"}  # as in IPython: include can leave text/plain out


def test_magics_delegate_or_say_they_are_missing(
    interp: Interpreter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    class Magics:
        def run_line(self, name: str, line: str) -> str:
            calls.append(("line", name, line))
            return "L"

        def run_cell(self, name: str, line: str, cell: str) -> str:
            calls.append(("cell", name, line, cell))
            return "C"

        def system(self, cmd: str) -> None:
            calls.append(("system", cmd))

        def getoutput(self, cmd: str) -> list[str]:
            calls.append(("getoutput", cmd))
            return ["out"]

    ip = interp.shell
    monkeypatch.setattr(interp, "magics", None, raising=False)
    with pytest.raises(NotImplementedError, match="run_line_magic"):
        ip.run_line_magic("time", "1")
    monkeypatch.setattr(interp, "magics", Magics(), raising=False)
    assert ip.run_line_magic("time", "1") == "L" and ip.run_cell_magic("bash", "", "ls") == "C"
    ip.system("ls")
    assert ip.getoutput("ls") == ["out"]
    assert calls == [("line", "time", "1"), ("cell", "bash", "", "ls"), ("system", "ls"), ("getoutput", "ls")]


def test_config_gui_and_parent(interp: Interpreter) -> None:
    ip = interp.shell
    assert dict(ip.config) == {"IPKernelApp": {}} and ip.config is ip.config  # as ipykernel's has one
    ip.enable_gui("qt")  # accepted and ignored
    assert ip.parent_header == {}


def test_set_parent_and_thread_parent_set_the_output_target(interp: Interpreter) -> None:
    ip = interp.shell
    cell = {"header": {"msg_id": "cell-1"}}

    def set_for_the_rest_of_this_context() -> Any:
        ip.set_parent(cell)
        return output_target()

    # set_parent holds until the code that called it ends: here, the copied context
    assert contextvars.copy_context().run(set_for_the_rest_of_this_context) is cell
    assert output_target() is CURRENT_CELL
    token = ip.set_thread_parent(cell)
    try:
        assert output_target() is cell
        inner = ip.set_thread_parent({})  # empty: the cell running at each write
        assert output_target() is CURRENT_CELL
        ip.reset_thread_parent(inner)
        assert output_target() is cell
    finally:
        ip.reset_thread_parent(token)
    assert output_target() is CURRENT_CELL
    with pytest.raises(TypeError, match="request message"):
        ip.set_thread_parent("cell-1")


class FakeKernel:
    """What ipycompat reads from the kernel core."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.execution_count = 4
        self.parent: dict[str, Any] | None = {"header": {"msg_id": "last"}}
        self.streams = types.SimpleNamespace(parent={"header": {"msg_id": "cell"}})
        self.kernel = self  # where Runtime.current_request finds the request being handled

    current_request = Runtime.current_request  # the real resolution, on this kernel's state


def test_kernel_link_parent_follows_the_output_target(interp: Interpreter) -> None:
    kernel = FakeKernel(interp)
    link = ipycompat.KernelLink(kernel)  # type: ignore[arg-type]
    interp.shell.kernel = link
    ip = interp.shell
    assert ip.get_parent()["header"]["msg_id"] == "cell"
    assert link._parent_header["header"]["msg_id"] == "cell"
    with output_to({"header": {"msg_id": "comm-msg"}}):
        assert ip.get_parent()["header"]["msg_id"] == "comm-msg"
        assert ip.parent_header["header"]["msg_id"] == "comm-msg"
    kernel.streams.parent = None
    assert link.get_parent()["header"]["msg_id"] == "last"
    assert ip.execution_count == 5  # as in IPython: the count of the next cell
    assert link.shell is ip
    with pytest.raises(AttributeError, match="get_ipython\\(\\).kernel has no attribute 'session'"):
        link.session  # noqa: B018


@pytest.mark.usefixtures("as_running")
def test_adapters_patch_ipython_modules(
    interp: Interpreter, sent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    getipython = types.ModuleType("IPython.core.getipython")
    ipycompat._adapt_getipython(getipython)
    assert getipython.get_ipython() is None  # a kernel that does not serve: IPython's answer
    monkeypatch.setitem(sys.modules, "__main__", interp.module)
    assert getipython.get_ipython() is interp.shell

    functions = types.ModuleType("IPython.core.display_functions")
    ipycompat._adapt_display_functions(functions)
    functions.publish_display_data({"text/plain": "p"}, metadata={"m": 1})

    class SelfDisplaying:
        def _ipython_display_(self) -> None:
            functions.display({"text/plain": "itself"}, raw=True)

    functions.display("a", SelfDisplaying())
    assert [c["data"]["text/plain"] for _, c, _ in sent] == ["p", "'a'", "itself"]
    assert sent[0][1]["metadata"] == {"m": 1}


@pytest.mark.usefixtures("as_running")
def test_interactiveshell_instance_is_the_shell_until_a_real_one_exists(
    interp: Interpreter, monkeypatch: pytest.MonkeyPatch
) -> None:
    class InteractiveShell:
        _instance: Any = None

        @classmethod
        def instance(cls) -> Any:
            if cls._instance is None:
                InteractiveShell._instance = cls()
            return cls._instance

        @classmethod
        def initialized(cls) -> bool:
            return cls._instance is not None

    class TerminalShell(InteractiveShell):
        pass

    monkeypatch.setitem(sys.modules, "__main__", interp.module)
    ipycompat._adapt_interactiveshell(types.SimpleNamespace(InteractiveShell=InteractiveShell))  # type: ignore[arg-type]
    assert InteractiveShell.initialized() and not TerminalShell.initialized()
    assert InteractiveShell.instance() is interp.shell
    real = TerminalShell.instance()  # an embedded IPython is created as usual, and then wins
    assert isinstance(real, TerminalShell) and InteractiveShell.instance() is real
    assert isinstance(interp.shell, FastKernelShell)


def test_register_magic_function_adds_user_magics(
    interp: Interpreter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastkernel.interpreter.magics import registry

    monkeypatch.setattr(registry, "LINE", dict(registry.LINE))
    monkeypatch.setattr(registry, "CELL", dict(registry.CELL))
    ip = interp.shell
    ip.register_magic_function(lambda line: f"line:{line}", "line", "shout")
    ip.register_magic_function(lambda line, cell: f"{line}|{cell}", "line_cell", "both")
    magics = registry.Magics(interp)
    assert magics.run_line("shout", "hi") == "line:hi"
    assert magics.run_line("both", "a") == "a|None" and magics.run_cell("both", "a", "body") == "a|body"
    with pytest.raises(ValueError, match="magic_kind"):
        ip.register_magic_function(print, "block")


def test_showsyntaxerror_shows_the_handled_syntax_error(interp: Interpreter, sent: Any) -> None:
    source = "try:\n    compile('1 +', 'snippet', 'exec')\n"
    source += "except SyntaxError:\n    get_ipython().showsyntaxerror()"
    run(interp, source)
    ((msg_type, content, _),) = sent
    assert msg_type == "error" and content["ename"] == "SyntaxError"
