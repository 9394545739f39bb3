"""complete_request and inspect_request against a real kernel; every message is validated."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastkernel.interpreter.completion import TIMEOUT_ENV
from tests.harness import Execution, KernelHarness

CELL = """\
import os
def scale(value, factor=2, floor=0):
    'Multiply value by factor.'
    return value * factor
class Gadget:
    'A gadget.'
gadget = Gadget()
inventory = {'apples': 1, 'bananas': 2}
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelHarness]:
    """A kernel whose jedi has time enough: a cold jedi on a loaded machine can take over 0.5 s,
    and these tests are about what jedi finds (the fallback has tests of its own)."""
    with KernelHarness.start(env={**os.environ, TIMEOUT_ENV: "30"}) as harness:
        assert harness.execute(CELL).content["status"] == "ok"
        yield harness


def complete(kernel: KernelHarness, code: str, cursor: int | None = None) -> dict[str, Any]:
    cursor = len(code) if cursor is None else cursor
    result = kernel.request("complete_request", {"code": code, "cursor_pos": cursor})
    assert result.types == ["status", "status"]  # busy, idle: nothing else on iopub
    content = result.content
    assert content["status"] == "ok"
    matches = content["matches"]
    assert len(matches) == len(set(matches)), matches
    types = content["metadata"]["_jupyter_types_experimental"]
    assert [t["text"] for t in types] == matches
    for t in types:
        assert t["start"] == content["cursor_start"] and t["end"] == content["cursor_end"]
        assert isinstance(t["type"], str) and isinstance(t["signature"], str)
    return content


def inspect(kernel: KernelHarness, code: str, cursor: int | None = None, level: int = 0) -> Execution:
    cursor = len(code) if cursor is None else cursor
    content = {"code": code, "cursor_pos": cursor, "detail_level": level}
    return kernel.request("inspect_request", content)


def test_attribute_completion(kernel: KernelHarness) -> None:
    content = complete(kernel, "os.pa")
    assert {"path", "pathsep"} <= set(content["matches"])
    assert (content["cursor_start"], content["cursor_end"]) == (3, 5)


def test_import_completion_has_no_duplicates(kernel: KernelHarness) -> None:
    content = complete(kernel, "import os.pa")
    assert content["matches"] == ["path"]
    assert content["cursor_start"] == len("import os.")


def test_keyword_arguments_in_a_call(kernel: KernelHarness) -> None:
    content = complete(kernel, "scale(1, fa")
    assert "factor=" in content["matches"]
    assert content["cursor_start"] == len("scale(1, ")


def test_dictionary_keys(kernel: KernelHarness) -> None:
    content = complete(kernel, "inventory['ba")
    assert content["matches"] == ["'bananas'"]
    assert content["cursor_start"] == len("inventory[")


def test_paths_in_strings(kernel: KernelHarness, tmp_path: Path) -> None:
    (tmp_path / "data_ü.csv").write_text("")
    code = f"open('{tmp_path}/data"
    content = complete(kernel, code)
    assert content["matches"] == ["data_ü.csv'"]
    assert content["cursor_start"] == len(code) - len("data")


def test_names_earlier_in_the_cell_and_positions_in_code_points(kernel: KernelHarness) -> None:
    code = "größe_gesamt = '😀'\nprint(größe_g)\nx = 1"
    cursor = code.index("größe_g)") + len("größe_g")
    content = complete(kernel, code, cursor)
    assert content["matches"] == ["größe_gesamt"]
    assert (content["cursor_start"], content["cursor_end"]) == (cursor - len("größe_g"), cursor)


def test_types_metadata(kernel: KernelHarness) -> None:
    content = complete(kernel, "sca")
    (entry,) = [t for t in content["metadata"]["_jupyter_types_experimental"] if t["text"] == "scale"]
    assert entry["type"] == "function"
    assert entry["signature"] == "(value, factor=2, floor=0)"
    types = {
        t["text"]: t["type"] for t in complete(kernel, "os.pa")["metadata"]["_jupyter_types_experimental"]
    }
    assert types["path"] == "module"


def test_magics(kernel: KernelHarness) -> None:
    content = complete(kernel, "%ti")
    assert content["matches"] == ["%time", "%timeit"]
    assert (content["cursor_start"], content["cursor_end"]) == (0, 3)
    content = complete(kernel, "x = 1\n%%tim")
    assert content["matches"] == ["%%time", "%%timeit"]
    assert content["cursor_start"] == len("x = 1\n")
    types = content["metadata"]["_jupyter_types_experimental"]
    assert {t["type"] for t in types} == {"magic"}
    assert "path" in complete(kernel, "%time os.pa")["matches"]  # the rest of the line is Python


def test_fallback_when_jedi_times_out_and_jedi_is_not_imported_at_start() -> None:
    with KernelHarness.start(env={**os.environ, TIMEOUT_ENV: "0.000001"}) as harness:
        harness.execute("import os\nclass Box:\n    width = 3\nbox = Box()")
        jedi_loaded = "import sys\n'jedi' in sys.modules"
        result = harness.execute(jedi_loaded).of_type("execute_result")
        assert result[0]["content"]["data"]["text/plain"] == "False"
        content = complete(harness, "box.wi")
        assert content["matches"] == ["width"]
        assert (content["cursor_start"], content["cursor_end"]) == (4, 6)
        assert {"path", "pathsep"} <= set(complete(harness, "os.pa")["matches"])
        result = harness.execute(jedi_loaded).of_type("execute_result")
        assert result[0]["content"]["data"]["text/plain"] == "True"  # imported by the first completion


def test_inspect_cell_function_levels(kernel: KernelHarness) -> None:
    result = inspect(kernel, "scale", 2)
    assert result.types == ["status", "status"]
    content = result.content
    assert content["status"] == "ok" and content["found"] is True
    text = content["data"]["text/plain"]
    assert "scale(value, factor=2, floor=0)" in text
    assert "Multiply value by factor." in text
    assert "Cell In[1]" in text
    assert "return value * factor" not in text
    text = inspect(kernel, "scale", 2, level=1).content["data"]["text/plain"]
    assert "def scale(value, factor=2, floor=0):\n" in text
    assert "return value * factor" in text


def test_inspect_instance_shows_class_docstring(kernel: KernelHarness) -> None:
    text = inspect(kernel, "gadget").content["data"]["text/plain"]
    assert "A gadget." in text


def test_inspect_inside_a_call(kernel: KernelHarness) -> None:
    content = inspect(kernel, "len(").content
    assert content["found"] is True
    assert "Return the number of items" in content["data"]["text/plain"]
    content = inspect(kernel, "x = 1\nscale(3, ", None).content
    assert "Multiply value" in content["data"]["text/plain"]


def test_inspect_unknown_name(kernel: KernelHarness) -> None:
    content = inspect(kernel, "no_such_thing").content
    assert content == {"status": "ok", "found": False, "data": {}, "metadata": {}}


def test_malformed_requests_get_bad_request(kernel: KernelHarness) -> None:
    result = kernel.request("complete_request", {"cursor_pos": 1})
    assert result.content["status"] == "error" and result.content["ename"] == "BadRequest"
    result = kernel.request("inspect_request", {"code": "x", "cursor_pos": "1"})
    assert result.content["status"] == "error" and result.content["ename"] == "BadRequest"
