"""Cell events (get_ipython().events): order, arguments, failing callbacks."""

from __future__ import annotations

from typing import Any

import pytest

from fastkernel.interpreter.core import Interpreter
from fastkernel.interpreter.events import EventManager


def test_events_fire_around_a_cell_in_ipythons_order_with_its_arguments() -> None:
    interp = Interpreter()
    seen: list[Any] = []
    for name in ("pre_execute", "post_execute"):
        interp.events.register(name, lambda name=name: seen.append(name))
    interp.events.register("pre_run_cell", lambda info: seen.append(("pre_run_cell", info.raw_cell)))
    interp.events.register("post_run_cell", lambda result: seen.append(("post_run_cell", result.success)))
    interp.run_cell("1 / 0")
    assert seen == ["pre_execute", ("pre_run_cell", "1 / 0"), "post_execute", ("post_run_cell", False)]
    seen.clear()
    interp.run_cell("x = 1", display=False)  # a silent request: no *_run_cell events
    assert seen == ["pre_execute", "post_execute"]


def test_a_failing_callback_is_reported_and_the_others_still_run(capsys: pytest.CaptureFixture[str]) -> None:
    events = EventManager()
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("callback broke")

    def once() -> None:
        ran.append("once")
        events.unregister("post_execute", once)  # unregistering itself while triggered

    events.register("post_execute", broken)
    events.register("post_execute", once)
    events.trigger("post_execute")
    events.trigger("post_execute")
    assert ran == ["once"]
    assert capsys.readouterr().err.count("RuntimeError: callback broke") == 2


def test_unknown_events_and_bad_callbacks_are_clear_errors() -> None:
    events = EventManager()
    with pytest.raises(KeyError, match="unknown event 'post_exec'"):
        events.register("post_exec", print)
    with pytest.raises(KeyError, match="unknown event"):
        events.trigger("post_exec")
    with pytest.raises(TypeError, match="need a callable"):
        events.register("post_execute", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not registered"):
        events.unregister("post_execute", print)
