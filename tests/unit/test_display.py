from typing import Any

import pytest

from fastkernel.display import DisplayHandle, clear_output, display, update_display
from fastkernel.interpreter.core import Interpreter


@pytest.fixture
def sent() -> Any:
    log: list[tuple[str, dict[str, Any]]] = []
    interpreter = Interpreter(publish_display=lambda t, c, p: log.append((t, c)))
    interpreter.install_as_main()  # display() sends through the running interpreter
    yield log
    interpreter.uninstall()


class Html:
    def _repr_html_(self) -> str:
        return "<b>x</b>"


def test_display_html(sent: Any) -> None:
    display(Html(), metadata={"a": 1})
    ((t, c),) = sent
    assert t == "display_data"
    assert c["data"]["text/html"] == "<b>x</b>" and "text/plain" in c["data"]
    assert c["metadata"] == {"a": 1}


def test_handle_update_and_clear(sent: Any) -> None:
    h = display(1, display_id=True)
    assert isinstance(h, DisplayHandle)
    h.update(2)
    update_display(3, display_id=h.display_id)
    clear_output(wait=True)
    assert [t for t, _ in sent] == [
        "display_data",
        "update_display_data",
        "update_display_data",
        "clear_output",
    ]
    assert sent[1][1]["transient"] == {"display_id": h.display_id}
    assert sent[3][1] == {"wait": True}


def test_raw_and_exclude(sent: Any) -> None:
    display({"text/plain": "p", "text/html": "h"}, raw=True)
    display(Html(), exclude=["text/html"])
    assert sent[0][1]["data"] == {"text/plain": "p", "text/html": "h"}
    assert "text/html" not in sent[1][1]["data"]
